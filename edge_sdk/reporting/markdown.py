"""report.md: the CompatReport as Markdown (for a pull request, a wiki page or a terminal), same content as the
HTML minus the plots."""

from __future__ import annotations

from .html import session_label, short_summary
from ..schemas.bench import e2e_label
from ..schemas.report import PLAN_FLAG, VERDICT_TEXT, CompatReport, DeviceReport
from .spread import spread_line
from .svg import fmt_mb


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f} ms" if v >= 100 else (f"{v:.1f} ms" if v >= 10 else f"{v:.3g} ms")


def _cell(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _row(d: DeviceReport) -> str:
    p = d.best_plan
    plan_cov = next((c for c in d.coverage if c.is_plan_runtime), None)
    cov = "—"
    if plan_cov is not None:
        bad = len({i.op for i in plan_cov.issues})
        cov = {"full": "all ops ✓", "partial": f"⚠ {bad} op types fall back", "none": "⚠ nothing on the unit",
               "fails": "✗ refuses graph", "unknown": "? not checked", "not_applicable": "n/a"}[plan_cov.verdict]
    meas = "—"
    if d.measured:
        m = d.headline_measurement()
        meas = f"{_ms(m.p50_ms)} M" + (f" (P/M {m.best_plan_over_measured:.2f})"
                                       if m.best_plan_over_measured is not None else " (another plan: not compared)")
    mem = "—"
    if d.memory:
        mem = f"{fmt_mb(d.memory.total_mb)} / {fmt_mb(d.memory.usable_mb)}" + ("" if d.memory.fits else " ✗")
    prec = next((f"{u.needed} on {u.unit} {'✓' if u.supported else '✗'}" for u in d.precision
                 if u.used_by_plan and u.needed), "—")
    plan = short_summary(p.summary) if p else d.reasons[0][:120]
    lat = f"{_ms(p.latency_ms)} P" if p else "—"
    return "| " + " | ".join(_cell(x) for x in (d.device, d.device_class, VERDICT_TEXT[d.verdict], plan, lat, meas,
                                                 mem, prec, cov)) + " |"


def _device(d: DeviceReport) -> list[str]:
    out = [f"### {d.device} — {d.display_name}: {VERDICT_TEXT[d.verdict]}", ""]
    out += [f"- {short_summary(r)}" for r in d.reasons]
    if d.best_plan:
        p = d.best_plan
        out.append(f"- best plan (P): {p.summary}; {_ms(p.latency_ms)}, artifact {fmt_mb(p.size_mb)}, est. cosine "
                   f"drop {p.quality_drop_est:.3f}; passes {' → '.join(p.passes)}; {p.layout}")
    if d.memory:
        m = d.memory
        out.append(f"- memory (P): weights {fmt_mb(m.weights_mb)} + activations {fmt_mb(m.activations_mb)}"
                   + (f" + KV {fmt_mb(m.kv_cache_mb)}" if m.kv_cache_mb else "")
                   + f" + runtime {fmt_mb(m.overhead_mb)} = {fmt_mb(m.total_mb)} of {fmt_mb(m.usable_mb)} usable"
                   + (" per GPU" if m.per_device else "") + ("" if m.fits else " — does NOT fit")
                   + f" ({m.basis})")
    out.append("- precision per unit: " + "; ".join(
        f"{u.unit} ({u.kind}): {', '.join(u.precisions)}"
        + (f" — plan needs {u.needed} {'✓' if u.supported else '✗'}" if u.used_by_plan and u.needed else "")
        for u in d.precision))
    if d.fallback_flags:
        out += ["", "**⚠ Ops leaving the accelerator:**", ""] + [f"- {short_summary(f)}" for f in d.fallback_flags]
    out += ["", "| runtime | unit | ops | finding | source (version, confidence) |", "|---|---|---|---|---|"]
    for c in d.coverage:
        src = session_label(c) if c.check == "session" else (
            f"[{c.data_file}]({c.source_url}) {c.data_version}, {c.confidence}" if c.data_file and c.source_url
            else "—")
        finding = short_summary(c.summary) + (f" — fix: {c.fix}" if c.fix and c.verdict == "fails" else "")
        out.append("| " + " | ".join(_cell(x) for x in (f"{c.runtime}/{c.provider}" + (" (plan)" if c.is_plan_runtime
                                                                                       else ""),
                                                         f"{c.unit} ({c.unit_kind})", c.verdict, finding, src)) + " |")
    for m in d.measured:
        out.append("")
        out.append(f"- measured (M) {m.file}: p50 {_ms(m.p50_ms)} ({m.precision} {m.runtime}/{m.provider_used}"
                   f"{', FELL BACK' if m.fell_back else ''}); predicted {_ms(m.predicted_ms)}; P/M "
                   f"{'—' if m.predicted_over_measured is None else f'{m.predicted_over_measured:.2f}'}"
                   + (f"; also {'; '.join(m.other_runs)}" if m.other_runs else "")
                   + (f"; not compared with the best plan: {m.not_compared}" if m.not_compared else
                      f"; best plan P/M {_ratio(m.best_plan_over_measured)}"))
        out += _generation(m.generation)
        out += _layer_profile(m.layer_profile, m.file)
    if d.spread:
        out += ["", f"- {spread_line(d.spread)}"]
    out.append("")
    return out


def _generation(gc) -> list[str]:
    """A decoder measurement: TTFT, prefill and decode tokens/s and peak memory, P, M and P/M."""
    if gc is None:
        return []
    from .generation import fmt_value, verdict

    out = ["", f"**Generation** ({gc.engine}, {gc.prompt_tokens}-token prompt, {gc.new_tokens} new tokens"
           + (f"; P: prompt {gc.predicted_prompt_tokens}, decode at context {gc.context}" if gc.context else "")
           + ")" + (f" — not compared: {gc.not_compared}" if gc.not_compared else ""), "",
           "| metric | predicted (P) | measured (M) | P/M | |", "|---|---|---|---|---|"]
    for x in gc.metrics:
        out.append("| " + " | ".join(_cell(v) for v in (
            x.label, fmt_value(x.predicted, x.unit), fmt_value(x.measured, x.unit), _ratio(x.predicted_over_measured),
            "; ".join(t for t in (verdict(x), x.note) if t))) + " |")
    return out


def _ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _layer_profile(lp, file: str) -> list[str]:
    """Per-layer P/M and the top ops of a profiled measurement (bench --profile-ops)."""
    if lp is None:
        return []
    if not lp.available:
        return ["", f"  per-op profile of {file} unavailable ({lp.runtime}): {lp.unavailable_reason}"]
    out = ["", f"**Per layer** (M: {lp.runtime} profiler, {lp.iterations} profiled runs of {file}; P: "
               f"{lp.predicted_basis})", "",
           f"Layer sum {_ms(lp.layer_sum_ms)} M + (other) {_ms(lp.other_ms)} M; end-to-end p50 "
           f"({e2e_label(lp.end_to_end_source)}) {_ms(lp.end_to_end_ms)} M, inside the profiler "
           f"{_ms(lp.profiled_run_ms)}: **layer sum / end-to-end = "
           f"{_ratio(lp.layer_sum_over_end_to_end)}**" + (f"; trace `{lp.trace_file}`" if lp.trace_file else ""), "",
           "| layer | kind | predicted (P) | measured (M) | P/M |", "|---|---|---|---|---|"]
    for x in lp.layers:
        out.append("| " + " | ".join(_cell(v) for v in (x.layer, x.kind or "—", _ms(x.predicted_ms),
                                                           _ms(x.measured_ms) if x.nodes else "— (no node)",
                                                           _ratio(x.predicted_over_measured))) + " |")
    out += ["", f"Top {len(lp.top_ops)} ops by time (M):", "", "| node | op | layer | µs/run | share |",
            "|---|---|---|---|---|"]
    out += ["| " + " | ".join(_cell(v) for v in (f"`{n.node}`", n.op_type or "?", n.layer, f"{n.per_run_us:.1f}",
                                                   f"{100 * n.share:.1f} %")) + " |" for n in lp.top_ops]
    return out


def render_markdown(r: CompatReport) -> str:
    counts = {v: [d.device for d in r.devices if d.verdict == v] for v in VERDICT_TEXT}
    lines = [f"# Compatibility report: {r.model_name}", "",
             f"`{r.model}` · {r.family or 'unknown family'} · {r.params / 1e6:,.1f} M parameters · batch {r.batch}, "
             f"sequence {r.seq_len} · objective {r.objective} · {len(r.devices)} devices ({r.devices_selected}) · "
             f"{r.created_at}", ""]
    for v, names in counts.items():
        lines.append(f"- **{VERDICT_TEXT[v]}** ({len(names)}): {', '.join(names) or 'none'}")
    lines.append("")
    flags = [(d.device, f) for d in r.devices for f in d.fallback_flags]
    if flags:
        lines += ["## ⚠ Ops that would leave the accelerator", ""]
        lines += [f"- **{dev}**: {short_summary(f)}" for dev, f in flags]
        lines += ["", f"`{PLAN_FLAG.strip()}` marks the runtime of the device's best plan; its predicted latency "
                      f"assumes no op falls back."]
        lines.append("")
    lines += ["## All devices", "", "P = predicted, M = measured.", "",
              "| device | class | verdict | best plan | latency | measured | memory needed / usable | precision | "
              "ops on plan runtime |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(d) for d in r.devices]
    lines += ["", "## Per device", ""]
    for d in r.devices:
        lines += _device(d)
    g = r.graph
    lines += ["## The model's graph", "", f"{g.note}. Exporter {g.exporter or '—'}, opset {g.opset or '—'}, "
              f"{g.nodes} nodes.", ""]
    if r.ort_cpu:
        o = r.ort_cpu
        lines.append(f"onnxruntime CPU check (real session, onnxruntime {o.onnxruntime_version}): "
                     + ("session created" if o.session_created else f"FAILED: {o.error}"))
        lines.append("")
    for title, ops in (("As exported", g.ops), ("Fixed shapes, folded", g.static_ops),
                       (f"LiteRT builtins ({'converted' if g.tflite_status == 'converted' else 'mapped'})",
                        g.tflite_ops)):
        lines.append(f"- {title}: " + (", ".join(f"{o.op} ×{o.count}" for o in ops) or "none"))
    if g.tflite_note:
        lines.append(f"- LiteRT: {g.tflite_note}")
    if g.tflite_unmapped:
        lines.append(f"- ONNX ops with no TFLite builtin: {', '.join(g.tflite_unmapped)}")
    lines += ["", "## Benchmark results", "", f"Read from `{r.results_dir}`.", ""]
    lines += [f"- used: {f}" for f in r.results_used] or ["- used: none"]
    lines += [f"- ignored: {i.file} — {i.reason}" for i in r.results_ignored]
    lines += ["", "## Op-support data", "", "| file | describes | version | confidence | source |",
              "|---|---|---|---|---|"]
    lines += [f"| {s.file} | {_cell(s.title)} | {_cell(s.runtime_version or '—')} | {s.confidence} | {s.source_url} |"
              for s in r.op_data]
    lines += ["", "## Versions", ""] + [f"- {k}: {v}" for k, v in r.versions.items()]
    lines += ["", "## How to read this", ""] + [f"- {n}" for n in r.notes] + [""]
    return "\n".join(lines)
