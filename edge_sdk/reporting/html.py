"""report.html: one self-contained page (inline CSS, inline SVG plots, no scripts, nothing fetched) rendered from a
CompatReport, for someone choosing a board: the verdict matrix first, then plots, then what would fall back, then
per-device detail and every source and version the numbers rest on.

Why this file is long: the page is one document; each section's renderer is short and lives beside the others
so that the page's layout and style stay consistent."""

from __future__ import annotations

from html import escape

from ..schemas.bench import e2e_label
from ..schemas.report import PLAN_FLAG, VERDICT_TEXT, CompatReport, DeviceReport, RuntimeCoverage
from .spread import spread_line
from .svg import (LatencyRow, MemoryRow, ParetoPointRow, fmt_mb, latency_chart, memory_chart, pareto_chart)

SHORT_PROVIDERS = {"CPUExecutionProvider": "cpu-ep", "TensorrtExecutionProvider": "trt-ep",
                   "CUDAExecutionProvider": "cuda-ep", "QNNExecutionProvider": "qnn-ep",
                   "CoreMLExecutionProvider": "coreml-ep", "TIDLExecutionProvider": "tidl-ep"}

CSS = """
:root{--ok:#2e7d32;--plan:#e08e0b;--no:#c62828;--ink:#111827;--mute:#6b7280;--line:#e5e7eb;--bg:#f8fafc}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 Inter,"Segoe UI",Helvetica,Arial,sans-serif}
main{max-width:1360px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--mute);margin-bottom:16px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:14px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;border-top:4px solid #94a3b8}
.card .n{font-size:28px;font-weight:700;line-height:1.1}
.card .l{font-weight:600}
.card .d{color:var(--mute);font-size:12px;margin-top:4px}
.card.ok{border-top-color:var(--ok)}.card.plan{border-top-color:var(--plan)}.card.no{border-top-color:var(--no)}
.card.warn{border-top-color:#b45309}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;
  white-space:nowrap}
.b-runs_as_is{background:var(--ok)}.b-runs_with_plan{background:var(--plan)}.b-cannot_run{background:var(--no)}
.tag{display:inline-block;padding:0 6px;border-radius:4px;font-size:11px;font-weight:700;margin-right:3px}
.P{background:#e0e7ff;color:#3730a3}.M{background:#1f2937;color:#fff}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);border-radius:6px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;font-size:13px}
th{background:#f1f5f9;font-weight:600;font-size:12px;color:#374151;white-space:nowrap}
tr:nth-child(even) td{background:#fcfdfe}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.muted{color:var(--mute)}
.bar{display:flex;height:10px;width:150px;background:#e5e7eb;border-radius:3px;overflow:hidden;margin-top:3px}
.bar span{display:block;height:100%}
.s-w{background:#2563eb}.s-a{background:#60a5fa}.s-k{background:#a78bfa}.s-o{background:#94a3b8}
.bar.over{outline:2px solid var(--no)}
.cov-full{color:var(--ok);font-weight:600}.cov-partial,.cov-none{color:#b45309;font-weight:600}
.cov-fails{color:var(--no);font-weight:700}.cov-unknown,.cov-not_applicable{color:var(--mute)}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.plot{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px}
.flags{background:#fff7ed;border:1px solid #fdba74;border-left:6px solid #ea580c;border-radius:8px;padding:10px 16px}
.flags h2{border:none;margin:4px 0 6px;color:#9a3412}
.flags li{margin:3px 0}
.flags .dev{font-weight:700}
details{background:#fff;border:1px solid var(--line);border-radius:8px;margin:8px 0;padding:6px 12px}
summary{cursor:pointer;font-weight:600;padding:4px 0}
ul.reasons{margin:6px 0 10px 18px;padding:0}
.legend{color:var(--mute);font-size:12px;margin:6px 0}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.three{display:grid;grid-template-columns:1fr 1fr 1fr;gap:16px}
a{color:#1d4ed8;text-decoration:none}
"""


def _e(x: object) -> str:
    return escape(str(x))


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f} ms" if v >= 100 else (f"{v:.1f} ms" if v >= 10 else f"{v:.3g} ms")


def short_runtime(runtime: str, provider: str) -> str:
    return f"{'ort' if runtime == 'onnxruntime' else runtime}/{SHORT_PROVIDERS.get(provider, provider)}"


def short_summary(summary: str) -> str:
    for long, short in SHORT_PROVIDERS.items():
        summary = summary.replace(f"onnxruntime/{long}", f"ort/{short}")
    return summary


def _badge(verdict: str) -> str:
    return f"<span class='badge b-{verdict}'>{_e(VERDICT_TEXT[verdict])}</span>"


def _plan_cov(d: DeviceReport) -> RuntimeCoverage | None:
    return next((c for c in d.coverage if c.is_plan_runtime), None)


def _cov_cell(c: RuntimeCoverage | None) -> str:
    if c is None:
        return "<span class='muted'>—</span>"
    bad = len({i.op for i in c.issues})
    text = {"full": f"all ops on {c.unit} ✓", "partial": f"⚠ {bad} op type{'s' * (bad != 1)} → "
                                                           f"{c.fallback_to or 'other unit'}",
            "none": f"⚠ nothing on {c.unit}", "fails": "✗ runtime refuses graph", "unknown": "? not checked",
            "not_applicable": "n/a"}[c.verdict]
    how = "real session" if c.check == "session" else (c.data_file or "")
    return f"<span class='cov-{c.verdict}' title='{_e(c.summary)}'>{_e(text)}</span>" + \
        (f" <span class='muted' style='font-size:11px'>({_e(how)})</span>" if how else "")


def _mem_cell(d: DeviceReport) -> str:
    m = d.memory
    if m is None:
        return "<span class='muted'>—</span>"
    segs = [("s-w", m.weights_mb, "weights"), ("s-a", m.activations_mb, "activations"),
            ("s-k", m.kv_cache_mb, "KV cache"), ("s-o", m.overhead_mb, "runtime overhead")]
    scale = max(m.usable_mb, m.total_mb)
    spans = "".join(f"<span class='{c}' style='width:{100 * v / scale:.2f}%' title='{t} {fmt_mb(v)}'></span>"
                    for c, v, t in segs if v > 0)
    over = "" if m.fits else " over"
    pct = 100 * m.total_mb / m.usable_mb
    label = f"{fmt_mb(m.total_mb)} / {fmt_mb(m.usable_mb)} ({pct:.0f}%)" + (" per GPU" if m.per_device else "")
    cls = "" if m.fits else " style='color:var(--no);font-weight:600'"
    return f"<span{cls}>{_e(label)}</span><div class='bar{over}'>{spans}</div>"


def _prec_cell(d: DeviceReport) -> str:
    used = next((u for u in d.precision if u.used_by_plan), None)
    if used is None or used.needed is None:
        return "<span class='muted'>—</span>"
    mark = "✓" if used.supported else "<b class='cov-fails'>✗</b>"
    return (f"<span title='{_e(used.unit)} computes in {_e(', '.join(used.precisions))}'>{_e(used.needed)} on "
            f"{_e(used.unit)} {mark}</span>")


def session_label(c) -> str:
    """What ran a `session` coverage check: LiteRT rows load the converted file in a LiteRT interpreter."""
    return "real LiteRT interpreter" if c.op_level == "tflite" else "real onnxruntime session"


def _measured_cell(d: DeviceReport) -> str:
    if not d.measured:
        return "<span class='muted'>—</span>"
    m = d.headline_measurement()
    ratio = (f" <span class='muted'>(P/M {m.best_plan_over_measured:.2f})</span>" if m.best_plan_over_measured
             is not None else f" <span class='muted' title='{_e(m.not_compared or '')}'>(another plan: not "
                              f"compared)</span>")
    more = f" <span class='muted'>+{len(d.measured) - 1} more</span>" if len(d.measured) > 1 else ""
    fb = " <span class='cov-fails'>fell back!</span>" if any(x.fell_back for x in d.measured) else ""
    return f"<span class='tag M'>M</span>{_ms(m.p50_ms)}{ratio}{more}{fb}"


def _matrix(r: CompatReport) -> str:
    rows = []
    for d in r.devices:
        plan = d.best_plan
        plan_txt = _e(short_summary(plan.summary)) if plan else f"<span class='muted'>{_e(d.reasons[0][:140])}</span>"
        lat = f"<span class='tag P'>P</span>{_ms(plan.latency_ms)}" if plan else "—"
        rows.append(
            f"<tr><td><a href='#dev-{_e(d.device)}' title='{_e(d.display_name)}'><b>{_e(d.device)}</b></a></td>"
            f"<td>{_e(d.device_class)}</td>"
            f"<td>{_badge(d.verdict)}</td><td>{plan_txt}</td><td class='num'>{lat}</td>"
            f"<td class='num'>{_measured_cell(d)}</td><td>{_mem_cell(d)}</td><td style='white-space:nowrap'>"
            f"{_prec_cell(d)}</td>"
            f"<td>{_cov_cell(_plan_cov(d))}</td></tr>")
    head = ("<tr><th>device</th><th>class</th><th>verdict</th><th>best plan</th><th>latency</th><th>measured</th>"
            "<th>memory: needed / usable</th><th>precision</th><th>ops on the plan's runtime</th></tr>")
    legend = ("<div class='legend'><span class='tag P'>P</span> predicted &nbsp; <span class='tag M'>M</span> "
              "measured (p50) &nbsp; memory bar: <span style='color:#2563eb'>■</span> weights "
              "<span style='color:#60a5fa'>■</span> activations <span style='color:#a78bfa'>■</span> KV cache "
              "<span style='color:#94a3b8'>■</span> runtime overhead, full width = usable memory</div>")
    return f"<table>{head}{''.join(rows)}</table>{legend}"


def _cards(r: CompatReport) -> str:
    groups = {v: [d.device for d in r.devices if d.verdict == v] for v in VERDICT_TEXT}
    flagged = [d.device for d in r.devices if d.fallback_flags]
    out = []
    for v, cls in (("runs_as_is", "ok"), ("runs_with_plan", "plan"), ("cannot_run", "no")):
        names = groups[v]
        out.append(f"<div class='card {cls}'><div class='n'>{len(names)}</div><div class='l'>"
                   f"{_e(VERDICT_TEXT[v])}</div><div class='d'>{_e(', '.join(names) or 'none')}</div></div>")
    out.append(f"<div class='card warn'><div class='n'>{len(flagged)}</div><div class='l'>devices with ops leaving "
               f"the accelerator</div><div class='d'>{_e(', '.join(flagged) or 'none')}</div></div>")
    return f"<div class='cards'>{''.join(out)}</div>"


def _findings(r: CompatReport) -> str:
    items = []
    runnable = [d for d in r.devices if d.best_plan and d.verdict != "cannot_run"]
    if runnable:
        fast = min(runnable, key=lambda d: d.best_plan.latency_ms)  # type: ignore[union-attr]
        items.append(f"Fastest predicted: <b>{_e(fast.device)}</b> at {_ms(fast.best_plan.latency_ms)} "
                     f"<span class='tag P'>P</span> with {_e(short_summary(fast.best_plan.summary))}.")
        edge = [d for d in runnable if d.device_class in ("embedded", "mobile", "automotive")]
        if edge:
            e = min(edge, key=lambda d: d.best_plan.latency_ms)  # type: ignore[union-attr]
            items.append(f"Fastest edge device: <b>{_e(e.device)}</b> at {_ms(e.best_plan.latency_ms)} "
                         f"<span class='tag P'>P</span>.")
    for d in r.devices:
        for m in d.measured:
            if m.predicted_over_measured is not None:
                items.append(f"<b>{_e(d.device)}</b> measured {_ms(m.p50_ms)} <span class='tag M'>M</span> "
                             f"on {_e(m.host or m.target)} "
                             f"vs {_ms(m.predicted_ms)} <span class='tag P'>P</span> (P/M "
                             f"{m.predicted_over_measured:.2f}: "
                             f"{'slower' if m.predicted_over_measured < 1 else 'faster'} than predicted; "
                             f"{_e(m.file)}).")
    no = [d for d in r.devices if d.verdict == "cannot_run"]
    for d in no[:4]:
        items.append(f"<b>{_e(d.device)}</b> cannot run it: {_e(d.reasons[-1][:260])}")
    if len(no) > 4:
        items.append(f"… and {len(no) - 4} more devices that cannot run it (see the matrix).")
    return "<ul class='reasons'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" if items else ""


def _flags(r: CompatReport) -> str:
    lines = []
    for d in r.devices:
        for f in d.fallback_flags:
            plan = f.startswith(PLAN_FLAG)
            text = f[len(PLAN_FLAG):] if plan else f
            tag = "<span class='badge' style='background:#1d4ed8'>plan</span> " if plan else ""
            lines.append(f"<li>{tag}<span class='dev'>{_e(d.device)}</span>: {_e(short_summary(text))}</li>")
    if not lines:
        return ("<div class='flags' style='background:#f0fdf4;border-color:#86efac;border-left-color:#16a34a'>"
                "<h2 style='color:#166534'>No op leaves an accelerator</h2>Every checked accelerator runtime "
                "takes the whole graph.</div>")
    return (f"<div class='flags'><h2>⚠ Ops that would leave the accelerator (silent fallbacks)</h2>"
            f"<div class='muted'>Per device runtime: nodes that a delegate / execution provider / compiler cannot "
            f"place on its NPU, DLA, GPU or TPU, and where they would run instead. <b>plan</b> marks the runtime "
            f"of the device's best plan, whose predicted latency assumes none do; the others are alternatives on "
            f"the same device.</div><ul>{''.join(lines)}</ul></div>")


def _plots(r: CompatReport) -> tuple[str, str]:
    """(latency + memory overview, Pareto chart + table)."""
    lat = [LatencyRow(d.device, d.verdict, d.best_plan.latency_ms if d.best_plan else None,
                      [m.p50_ms for m in d.measured], short_summary(d.best_plan.summary) if d.best_plan else "")
           for d in r.devices]
    mem = [MemoryRow(d.device, d.memory.total_mb if d.memory else None, d.memory_usable_gb * 1000,
                     d.memory.fits if d.memory else None, bool(d.memory and d.memory.per_device)) for d in r.devices]
    pd = next((d for d in r.devices if d.device == r.pareto_device), None)
    pts = [ParetoPointRow(short_summary(p.summary), p.latency_ms, p.cosine_drop_est, p.size_mb, p.is_best)
           for p in (pd.pareto if pd else [])]
    rows = "".join(f"<tr><td>{'★ ' if p.is_best else ''}{_e(short_summary(p.summary))}</td><td class='num'>"
                   f"{_ms(p.latency_ms)}</td><td class='num'>{fmt_mb(p.size_mb)}</td><td class='num'>"
                   f"{p.cosine_drop_est:.4f}</td></tr>" for p in sorted(pd.pareto if pd else [],
                                                                         key=lambda p: p.latency_ms))
    table = (f"<h3 style='margin-top:0'>Pareto plans on {_e(r.pareto_device or '—')} <span class='tag P'>P</span>"
             f"</h3><table><tr><th>plan</th><th>latency</th><th>artifact</th><th>est. drop</th></tr>{rows}</table>"
             f"<p class='legend'>No plan on the front is both faster and more accurate than another. ★ = the plan "
             f"chosen for the {_e(r.objective)} objective. Quality drops are priors until a build measures them."
             f"</p>")
    overview = (f"<div class='plots'><div class='plot'>{latency_chart(lat)}</div><div class='plot'>"
                f"{memory_chart(mem)}</div></div>")
    pareto = (f"<div class='plots'><div class='plot'>{pareto_chart(pts, r.pareto_device or '—')}</div>"
              f"<div class='plot'>{table}</div></div>")
    return overview, pareto


def _coverage_table(d: DeviceReport) -> str:
    rows = []
    for c in d.coverage:
        src = ""
        if c.check == "data" and c.source_url:
            src = (f"<a href='{_e(c.source_url)}'>{_e(c.data_file)}</a> · {_e(c.data_version or '')} · "
                   f"confidence <b>{_e(c.confidence)}</b>")
            if c.version_note:
                src += f"<br><span class='muted'>{_e(c.version_note)}</span>"
        elif c.check == "session":
            src = session_label(c)
        issues = "".join(f"<li><b>{_e(i.op)}</b> ×{i.nodes}: {_e(i.reason)}</li>" for i in c.issues)
        notes = "".join(f"<li class='muted'>{_e(n)}</li>" for n in c.notes)
        plan = " <span class='badge' style='background:#1d4ed8'>plan</span>" if c.is_plan_runtime else ""
        rows.append(f"<tr><td class='mono'>{_e(c.runtime)}/{_e(c.provider)}{plan}<br><span class='muted'>on "
                    f"{_e(c.unit)} ({_e(c.unit_kind)}) · {_e(c.format)}</span></td><td class='cov-{c.verdict}'>"
                    f"{_e(c.verdict)}</td><td>{_e(short_summary(c.summary))}"
                    f"{f'<ul>{issues}</ul>' if issues else ''}{f'<ul>{notes}</ul>' if notes else ''}"
                    f"{f'<div><b>fix:</b> {_e(c.fix)}</div>' if c.fix and c.verdict == 'fails' else ''}</td>"
                    f"<td style='font-size:12px'>{src}</td></tr>")
    return ("<table><tr><th>runtime</th><th>ops</th><th>finding</th><th>source</th></tr>" + "".join(rows)
            + "</table>")


def _layer_profile(lp, file: str) -> str:
    """Per-layer P/M table and top ops of a profiled measurement (bench --profile-ops)."""
    if not lp.available:
        return f"<p class='muted'>Per-op profile of {_e(file)} unavailable ({_e(lp.runtime)}): " \
               f"{_e(lp.unavailable_reason)}</p>"
    r = lp.layer_sum_over_end_to_end
    rows = "".join(f"<tr><td class='mono'>{_e(x.layer)}</td><td>{_e(x.kind or '—')}</td><td class='num'>"
                   f"{_ms(x.predicted_ms)}</td><td class='num'>{_ms(x.measured_ms) if x.nodes else '— (no node)'}"
                   f"</td><td class='num'>{'—' if x.predicted_over_measured is None else f'{x.predicted_over_measured:.2f}'}"
                   f"</td></tr>" for x in lp.layers)
    ops = "".join(f"<tr><td class='mono'>{_e(n.node)}</td><td>{_e(n.op_type or '?')}</td><td class='mono'>"
                  f"{_e(n.layer)}</td><td class='num'>{n.per_run_us:.1f} µs</td><td class='num'>{100 * n.share:.1f} %"
                  f"</td></tr>" for n in lp.top_ops)
    return (f"<h3>Per layer <span class='tag P'>P</span> <span class='tag M'>M</span> — {_e(file)}</h3>"
            f"<p>Layer sum {_ms(lp.layer_sum_ms)} + (other) {_ms(lp.other_ms)} <span class='tag M'>M</span>; "
            f"end-to-end p50 ({_e(e2e_label(lp.end_to_end_source))}) {_ms(lp.end_to_end_ms)}, inside the profiler "
            f"{_ms(lp.profiled_run_ms)}: "
            f"<b>layer sum / end-to-end = {'—' if r is None else f'{r:.2f}'}</b>. M: {_e(lp.runtime)} profiler, "
            f"{lp.iterations} profiled runs{f', trace {_e(lp.trace_file)}' if lp.trace_file else ''}. P: "
            f"{_e(lp.predicted_basis or '—')}.</p><div class='two'><div><table><tr><th>layer</th><th>kind</th>"
            f"<th>predicted (P)</th><th>measured (M)</th><th>P/M</th></tr>{rows}</table></div><div><table><tr>"
            f"<th>top op</th><th>type</th><th>layer</th><th>per run</th><th>share</th></tr>{ops}</table></div></div>")


def _device_detail(d: DeviceReport) -> str:
    parts = [f"<details id='dev-{_e(d.device)}'><summary>{_e(d.device)} — {_e(d.display_name)} "
             f"{_badge(d.verdict)}</summary>"]
    parts.append("<ul class='reasons'>" + "".join(f"<li>{_e(short_summary(x))}</li>" for x in d.reasons) + "</ul>")
    if d.best_plan:
        p = d.best_plan
        parts.append(f"<p><b>Best plan</b> <span class='tag P'>P</span> {_e(p.summary)} — {_ms(p.latency_ms)}, "
                     f"artifact {fmt_mb(p.size_mb)}, est. cosine drop {p.quality_drop_est:.3f}; passes: "
                     f"<span class='mono'>{_e(' → '.join(p.passes))}</span>; layout {_e(p.layout)}</p>")
        if d.as_is_plan and d.as_is_plan.summary != p.summary:
            parts.append(f"<p><b>Least compression that fits</b> <span class='tag P'>P</span> "
                         f"{_e(d.as_is_plan.summary)} — {_ms(d.as_is_plan.latency_ms)}</p>")
    if d.memory:
        m = d.memory
        parts.append("<h3>Memory fit <span class='tag P'>P</span></h3><table><tr><th>weights</th><th>activations"
                     "</th><th>KV cache</th><th>runtime overhead</th><th>total</th><th>usable</th><th>fits</th>"
                     f"<th>basis</th></tr><tr><td class='num'>{fmt_mb(m.weights_mb)}</td><td class='num'>"
                     f"{fmt_mb(m.activations_mb)}</td><td class='num'>{fmt_mb(m.kv_cache_mb)}</td><td class='num'>"
                     f"{fmt_mb(m.overhead_mb)}</td><td class='num'><b>{fmt_mb(m.total_mb)}</b></td><td class='num'>"
                     f"{fmt_mb(m.usable_mb)}</td><td>{'✓' if m.fits else '<b class=cov-fails>✗</b>'}</td>"
                     f"<td class='muted'>{_e(m.basis)}{' (per GPU)' if m.per_device else ''}</td></tr></table>")
    prec = "".join(f"<tr><td>{_e(u.unit)} ({_e(u.kind)})</td><td>{_e(', '.join(u.precisions))}</td>"
                   f"<td class='mono'>{_e(', '.join(u.runtimes))}</td><td>"
                   + (f"needs {_e(u.needed)} {'✓' if u.supported else '✗'}" if u.used_by_plan and u.needed else "")
                   + "</td></tr>" for u in d.precision)
    parts.append("<h3>Precision support per compute unit</h3><table><tr><th>unit</th><th>precisions</th>"
                 f"<th>runtimes</th><th>best plan</th></tr>{prec}</table>")
    parts.append(f"<h3>Operator coverage per runtime</h3>{_coverage_table(d)}")
    if d.measured:
        rows = "".join(f"<tr><td class='mono'>{_e(m.file)}</td><td>{_e(m.target)} ({_e(m.host or '?')})</td>"
                       f"<td>{_e(m.precision or '?')} {_e(m.runtime)}/{_e(m.provider_used)}"
                       f"{' <b class=cov-fails>fell back</b>' if m.fell_back else ''}</td><td class='num'>"
                       f"{_ms(m.p50_ms)}</td><td class='num'>{_ms(m.predicted_ms)}</td><td class='num'>"
                       f"{'—' if m.predicted_over_measured is None else f'{m.predicted_over_measured:.2f}'}</td>"
                       f"<td class='muted'>{_e(m.comparison)}"
                       f"{'<br>not compared with the best plan: ' + _e(m.not_compared) if m.not_compared else ''}"
                       f"{'<br>also: ' + _e('; '.join(m.other_runs)) if m.other_runs else ''}</td></tr>"
                       for m in d.measured)
        parts.append("<h3>Measured <span class='tag M'>M</span></h3><table><tr><th>result</th><th>target</th>"
                     "<th>ran</th><th>p50 (M)</th><th>predicted (P)</th><th>P/M</th><th>what is compared</th>"
                     f"</tr>{rows}</table>")
        if d.spread:
            parts.append(f"<p>{_e(spread_line(d.spread))}</p>")
        parts += [_generation(m.generation, m.file) for m in d.measured if m.generation]
        parts += [_layer_profile(m.layer_profile, m.file) for m in d.measured if m.layer_profile]
    if d.rejected:
        parts.append("<h3>Ruled out</h3><ul class='reasons'>" + "".join(f"<li class='muted'>{_e(x)}</li>"
                                                                         for x in d.rejected) + "</ul>")
    vers = ", ".join(f"{k} {v}" for k, v in d.runtime_versions.items())
    parts.append(f"<p class='muted'>Runtime versions pinned by the profile: {_e(vers)}. Profile confidence: "
                 f"{_e(d.profile_confidence)}.</p></details>")
    return "".join(parts)


def _generation(gc, file: str) -> str:
    """A decoder measurement's TTFT, prefill/decode tokens/s and peak memory: P, M and P/M."""
    from .generation import fmt_value, verdict

    rows = "".join(f"<tr><td>{_e(x.label)}</td><td class='num'>{_e(fmt_value(x.predicted, x.unit))}</td>"
                   f"<td class='num'>{_e(fmt_value(x.measured, x.unit))}</td><td class='num'>"
                   f"{'—' if x.predicted_over_measured is None else f'{x.predicted_over_measured:.2f}'}</td>"
                   f"<td class='muted'>{_e('; '.join(t for t in (verdict(x), x.note) if t))}</td></tr>"
                   for x in gc.metrics)
    what = (f"{gc.engine}, {gc.prompt_tokens}-token prompt, {gc.new_tokens} new tokens"
            + (f"; P: prompt {gc.predicted_prompt_tokens}, decode at context {gc.context}" if gc.context else ""))
    why = f"<p class='muted'>not compared: {_e(gc.not_compared)}</p>" if gc.not_compared else ""
    return (f"<h3>Generation <span class='tag P'>P</span> <span class='tag M'>M</span> <span class='muted mono'>"
            f"{_e(file)}</span></h3><p class='muted'>{_e(what)}</p>{why}<table><tr><th>metric</th>"
            f"<th>predicted (P)</th><th>measured (M)</th><th>P/M</th><th></th></tr>{rows}</table>")


def _ops_tables(r: CompatReport) -> str:
    g = r.graph

    def table(title: str, ops) -> str:
        rows = "".join(f"<tr><td class='mono'>{_e(o.op)}</td><td class='num'>{o.count}</td></tr>" for o in ops)
        return (f"<div><h3>{_e(title)}</h3><table><tr><th>op</th><th>nodes</th></tr>"
                f"{rows or '<tr><td colspan=2 class=muted>none</td></tr>'}</table></div>")

    fixed = ", ".join(f"{k}={v}" for k, v in g.static_shape.items()) or "no symbolic dims"
    how_tflite = "converted" if g.tflite_status == "converted" else "mapped, not converted"
    ort = ""
    if r.ort_cpu:
        o = r.ort_cpu
        ort = (f"<p><b>onnxruntime CPU check</b> (real session, onnxruntime {_e(o.onnxruntime_version)}, "
               f"{_e(o.machine)}): {'session created ✓' if o.session_created else '<b class=cov-fails>failed</b>: '}"
               f"{_e(o.error or '')}"
               + (f"; ops without a CPU kernel: {_e(', '.join(o.ops_without_kernel))}" if o.ops_without_kernel else "")
               + "</p>")
    return (f"<p>{_e(g.note)}. Exporter: {_e(g.exporter or '—')}, opset {_e(g.opset or '—')}, {g.nodes} nodes; "
            f"took {g.seconds:.1f} s.</p>{ort}<div class='three'>{table('As exported (dynamic shapes)', g.ops)}"
            f"{table(f'Fixed shapes, folded ({fixed})', g.static_ops)}"
            f"{table(f'LiteRT builtins ({how_tflite})', g.tflite_ops)}</div>"
            + (f"<p class='muted'>{_e(g.tflite_note)}</p>" if g.tflite_note else "")
            + (f"<p class='cov-fails'>ONNX ops with no TFLite builtin: {_e(', '.join(g.tflite_unmapped))}</p>"
               if g.tflite_unmapped else ""))


def _results(r: CompatReport) -> str:
    used = "".join(f"<li class='mono'>{_e(f)}</li>" for f in r.results_used) or "<li class='muted'>none</li>"
    ign = "".join(f"<tr><td class='mono'>{_e(i.file)}</td><td>{_e(i.reason)}</td></tr>" for i in r.results_ignored)
    return (f"<p>Read from <span class='mono'>{_e(r.results_dir or '—')}</span>.</p><div class='two'><div>"
            f"<h3>Used</h3><ul>{used}</ul></div><div><h3>Ignored</h3>"
            + (f"<table><tr><th>file</th><th>why</th></tr>{ign}</table>" if ign else "<p class='muted'>none</p>")
            + "</div></div>")


def _sources(r: CompatReport) -> str:
    rows = "".join(f"<tr><td class='mono'>{_e(s.file)}</td><td>{_e(s.title)}</td><td>{_e(s.runtime_version or '—')}"
                   f"</td><td><b>{_e(s.confidence)}</b></td><td style='font-size:12px'><a href='{_e(s.source_url)}'>"
                   f"{_e(s.source_url)}</a><br><span class='muted'>{_e(s.checked)}</span></td></tr>" for s in r.op_data)
    return ("<table><tr><th>file</th><th>describes</th><th>version</th><th>confidence</th><th>source, and how it was "
            f"checked</th></tr>{rows}</table>")


def render_html(r: CompatReport) -> str:
    fam = f"{r.family} · " if r.family else ""
    vers = "".join(f"<tr><td>{_e(k)}</td><td class='mono'>{_e(v)}</td></tr>" for k, v in r.versions.items())
    devices = "".join(_device_detail(d) for d in r.devices)
    overview, pareto = _plots(r)
    notes = "".join(f"<li>{_e(n)}</li>" for n in r.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Compatibility report: {_e(r.model_name)}</title><style>{CSS}</style></head>
<body><main>
<h1>Compatibility report: {_e(r.model_name)}</h1>
<div class="sub">{_e(r.model)} · {_e(fam)}{r.params / 1e6:,.1f} M parameters · batch {r.batch},
sequence {r.seq_len} · objective {_e(r.objective)}, max est. cosine drop {r.max_quality_drop} ·
{len(r.devices)} device profiles ({_e(r.devices_selected)}) · made {_e(r.created_at)} with edge-sdk
{_e(r.versions.get('edge-sdk', '?'))}</div>
{_cards(r)}
{_findings(r)}
{overview}
{_flags(r)}
<h2>All devices at a glance</h2>
{_matrix(r)}
<h2>Latency–quality trade-off on {_e(r.pareto_device or '—')}</h2>
{pareto}
<h2>Per device</h2>
<div class="legend">Click a device to expand: verdict reasons, memory breakdown, precision per unit, op coverage per
runtime (with each list's version, source and confidence), measurements, and the alternatives the planner ruled
out.</div>
{devices}
<h2>The model's graph</h2>
{_ops_tables(r)}
<h2>Benchmark results</h2>
{_results(r)}
<h2>Op-support data</h2>
{_sources(r)}
<h2>Versions</h2>
<table>{vers}</table>
<h2>How to read this</h2><ul class="reasons">{notes}</ul>
<p class="muted">Report made in {r.seconds:.1f} s. JSON (source of truth): report.json; Markdown: report.md.</p>
</main></body></html>
"""
