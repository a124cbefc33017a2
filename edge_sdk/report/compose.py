"""Putting a CompatReport together: for each selected device, plan, judge, check ops, attach measurements.

Verdicts:
- runs as is: an uncompressed plan (fp32/fp16/bf16, no pruning or sparsity) fits the device and the constraints.
  It is found by planning once more with the `quality` objective, whose best plan is the least lossy one that fits.
- runs with a plan: only compressed plans fit (int8/int4, pruning).
- cannot run: the planner finds no plan (its infeasibility message is the reason), or the best plan's runtime
  refuses the graph (an op it cannot run and cannot fall back from).
The best plan (objective as asked, latency by default) is what the rest of the device section describes.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InfeasibleError, InputError
from ..planner import DEFAULT_MAX_QUALITY_DROP, OBJECTIVES, Constraints
from ..schemas.plan import Plan, PlanSet
from ..planner.search import enumerate_candidates, plan_for_profile
from ..planner.space import RUNTIME_PRECISION
from ..schemas.profile import DeviceProfile
from .coverage import ACCELERATOR_KINDS, runtime_coverage
from .graph import ModelGraph, model_graph
from .measured import MatchedResult, collect_results
from .op_data import support_lists, tflite_mapping
from .ort_check import check_ort_cpu
from ..schemas.report import (PLAN_FLAG, CompatReport, DeviceReport, MemoryFit, OpDataSource, ParetoPoint, PlanLine,
                     RuntimeCoverage, UnitPrecision)
from .tflite_convert import ConvertedTflite, convert, litert_env_problem
from .tflite_map import TfliteNode, count_builtins, map_nodes, unmapped_ops
from ..versions import tool_versions

UNCOMPRESSED = {"fp32", "fp16", "bf16"}
TFLITE_MODES = ("auto", "map")
COMPRESSING_PASSES = {"structured_prune", "sparsity"}


def _gb(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


def plan_line(p: Plan) -> PlanLine:
    r = p.runtime
    return PlanLine(summary=p.summary(), precision=p.precision, runtime=r.name, provider=r.provider, unit=r.unit,
                    format=r.format, passes=[x.kind for x in p.passes], layout=p.layout.describe(),
                    quality_drop_est=p.predicted.quality.cosine_drop, size_mb=p.predicted.size_mb,
                    latency_ms=p.predicted.latency_ms)


def is_uncompressed(p: Plan) -> bool:
    return p.precision in UNCOMPRESSED and not any(x.kind in COMPRESSING_PASSES for x in p.passes)


def _memory(p: Plan, prof: DeviceProfile) -> MemoryFit:
    m = p.predicted.memory_mb
    usable = prof.memory_usable_gb * 1000
    return MemoryFit(weights_mb=m.weights_mb, activations_mb=m.activations_mb, kv_cache_mb=m.kv_cache_mb,
                     overhead_mb=m.overhead_mb, total_mb=m.total_mb, usable_mb=usable, fits=m.total_mb <= usable,
                     per_device=not p.layout.is_single, basis=f"best plan ({p.summary()})")


def _smallest_attempt(spec, prof: DeviceProfile, cons: Constraints) -> MemoryFit | None:
    """For a device with no plan: the smallest footprint any costed candidate reaches (why it does not fit).

    Uses the planner's own candidate enumeration, so the number matches the one its infeasibility message quotes."""
    cands, _, hints = enumerate_candidates(spec, prof, cons)
    pool = list(cands) or list(hints)  # hints combine unsupported precisions: only when nothing else was costed
    if not pool:
        return None
    c = min(pool, key=lambda c: c.pred.total_mb)
    usable = prof.memory_usable_gb * 1000
    return MemoryFit(weights_mb=c.pred.weights_mb, activations_mb=c.pred.activations_mb,
                     kv_cache_mb=c.pred.kv_cache_mb, overhead_mb=c.pred.overhead_mb, total_mb=c.pred.total_mb,
                     usable_mb=usable, fits=c.pred.total_mb <= usable, per_device=c.dp * c.tp * c.pp > 1,
                     basis=f"smallest candidate ({c.describe()}); no plan")


def _precisions(prof: DeviceProfile, best: Plan | None) -> list[UnitPrecision]:
    out = []
    for u in prof.compute_units:
        rts = [f"{r.name}/{r.provider}" for r in prof.runtimes if r.unit == u.name]
        used = best is not None and best.runtime.unit == u.name
        needed = RUNTIME_PRECISION.get(best.precision) if used and best else None
        supported = None
        if used and needed:
            # int4 weight-only is dequantized on the fly and computed in float
            supported = needed in u.precisions or best.precision == "int4_weight_only"  # type: ignore[union-attr]
        out.append(UnitPrecision(unit=u.name, kind=u.kind, precisions=list(u.precisions), runtimes=rts,
                                 used_by_plan=used, needed=needed, supported=supported))
    return out


def _flag(c: RuntimeCoverage) -> str | None:
    line = _flag_text(c)
    return f"{PLAN_FLAG}{line}" if line and c.is_plan_runtime else line


def _flag_text(c: RuntimeCoverage) -> str | None:
    if c.verdict == "fails":
        return f"{c.runtime}/{c.provider} on the {c.unit}: {c.summary}"
    if c.verdict in ("partial", "none") and c.unit_kind in ACCELERATOR_KINDS:
        if c.verdict == "none":
            first = c.issues[0] if c.issues else None
            why = f" ({first.op}: {first.reason})" if first else ""
            return (f"{c.runtime}/{c.provider}: nothing runs on the {c.unit}{why}; all {c.nodes} nodes fall back to "
                    f"{c.fallback_to or 'another unit'}" + (" — silently" if c.silent else ""))
        return f"{c.runtime}/{c.provider}: {c.summary}"
    return None


def _pareto(ps: PlanSet, best: Plan) -> list[ParetoPoint]:
    out = []
    for p in ps.pareto:
        out.append(ParetoPoint(summary=p.summary(), precision=p.precision, runtime=f"{p.runtime.name}/"
                               f"{p.runtime.provider}", latency_ms=p.predicted.latency_ms, size_mb=p.predicted.size_mb,
                               cosine_drop_est=p.predicted.quality.cosine_drop,
                               pruned=any(x.kind == "structured_prune" for x in p.passes),
                               is_best=p.summary() == best.summary()))
    return out


def _tensorrt_version(prof: DeviceProfile) -> str | None:
    return next((r.version for r in prof.runtimes if r.name == "tensorrt" and r.version), None)


def device_report(spec, prof: DeviceProfile, *, model: str, objective: str, cons: Constraints, graph: ModelGraph,
                  tfl: list[TfliteNode], ort, measured: list[MatchedResult],
                  converted: ConvertedTflite | None = None) -> DeviceReport:
    base = dict(device=prof.name, display_name=prof.display_name, device_class=prof.device_class.value,
                profile_confidence=prof.confidence.value, memory_usable_gb=prof.memory_usable_gb,
                accelerator_count=prof.accelerator_count,
                runtime_versions={f"{r.name}/{r.provider}": r.version or "not pinned" for r in prof.runtimes})
    try:
        ps = plan_for_profile(spec, prof, model=model, objective=objective, constraints=cons, top=3)
    except InfeasibleError as exc:
        coverage = [runtime_coverage(r, prof.unit(r.unit), is_plan=False, graph=graph, tfl=tfl, ort=ort,
                                     tensorrt_version=_tensorrt_version(prof), converted=converted)
                    for r in prof.runtimes]
        return DeviceReport(**base, verdict="cannot_run", reasons=[str(exc)],
                            memory=_smallest_attempt(spec, prof, cons), precision=_precisions(prof, None),
                            coverage=coverage, fallback_flags=[f for f in map(_flag, coverage) if f],
                            measured=[m.measurement for m in measured])
    best = ps.plans[0]
    least = best if is_uncompressed(best) else plan_for_profile(spec, prof, model=model, objective="quality",
                                                                constraints=cons, top=1).plans[0]
    coverage = []
    for r in prof.runtimes:
        is_plan = (r.name, r.provider, r.unit) == (best.runtime.name, best.runtime.provider, best.runtime.unit)
        coverage.append(runtime_coverage(r, prof.unit(r.unit), is_plan=is_plan, graph=graph, tfl=tfl, ort=ort,
                                         tensorrt_version=_tensorrt_version(prof), converted=converted))
    coverage.sort(key=lambda c: not c.is_plan_runtime)
    plan_cov = coverage[0] if coverage and coverage[0].is_plan_runtime else None
    mem = _memory(best, prof)
    reasons: list[str] = []
    if is_uncompressed(least):
        verdict = "runs_as_is"
        reasons.append(f"uncompressed {least.precision} fits: {_gb(least.predicted.memory_mb.total_mb)} of "
                       f"{_gb(mem.usable_mb)} usable on {least.runtime.name}/{least.runtime.provider}"
                       + (f" ({least.layout.describe()})" if not least.layout.is_single else ""))
        if best.summary() != least.summary():
            speed = least.predicted.latency_ms / best.predicted.latency_ms if best.predicted.latency_ms else 1.0
            gain = f"{speed:.2g}x faster predicted" if speed >= 1.05 else "about as fast, smaller"
            reasons.append(f"the {objective} objective picks {best.summary()} ({gain})")
    else:
        verdict = "runs_with_plan"
        reasons.append(f"no uncompressed (fp32/fp16/bf16, unpruned) plan fits; the least compression that does: "
                       f"{least.summary()} ({_gb(least.predicted.memory_mb.total_mb)} of {_gb(mem.usable_mb)} usable, "
                       f"est. cosine drop {least.predicted.quality.cosine_drop:.3f})")
    if plan_cov is not None:
        if plan_cov.verdict == "fails":
            verdict = "cannot_run"
            reasons.append(f"the best plan's runtime refuses the graph: {plan_cov.summary}"
                           + (f"; fix: {plan_cov.fix}" if plan_cov.fix else ""))
        elif plan_cov.verdict in ("partial", "none"):
            reasons.append(f"WARNING: the predicted latency assumes every op runs on the {plan_cov.unit}, but "
                           f"{plan_cov.summary}")
        elif plan_cov.verdict == "unknown":
            reasons.append(f"op coverage of {plan_cov.runtime}/{plan_cov.provider} not checked: {plan_cov.summary}")
    flags = sorted((f for f in (_flag(c) for c in coverage) if f), key=lambda f: not f.startswith(PLAN_FLAG))
    meas = [m.measurement for m in measured]
    for m in meas:
        if m.fell_back:
            flags.insert(0, f"measured run {m.file} fell back to {m.provider_used}: {m.fallback_reason or 'no reason'}")
    rejected = [f"{r.reason}: {', '.join(r.alternatives[:5])}{' …' if len(r.alternatives) > 5 else ''}"
                for r in ps.rejected]
    return DeviceReport(**base, verdict=verdict, reasons=reasons, best_plan=plan_line(best),  # type: ignore[arg-type]
                        as_is_plan=plan_line(least), memory=mem, precision=_precisions(prof, best),
                        coverage=coverage, fallback_flags=flags, measured=meas, pareto=_pareto(ps, best),
                        rejected=rejected)


def _op_sources() -> list[OpDataSource]:
    out = [OpDataSource(file=s.file, title=s.title, kind="support", runtime_version=s.runtime_version,
                        source_url=s.source_url, confidence=s.confidence, checked=" ".join(s.checked.split()))
           for s in support_lists()]
    m = tflite_mapping()
    out.append(OpDataSource(file=m.file, title=m.title, kind="mapping", runtime_version=None, source_url=m.source_url,
                            confidence=m.confidence, checked=" ".join(m.checked.split())))
    return out


def _one_line(exc: BaseException, limit: int = 240) -> str:
    s = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {s[:limit]}{'...' if len(s) > limit else ''}"


def _tflite(graph: ModelGraph, mode: str, work_dir: Path, seq_len: int) -> tuple[list[TfliteNode],
                                                                                 ConvertedTflite | None]:
    """The model's LiteRT builtins: converted for real when possible (mode auto), else mapped from ONNX."""
    info = graph.info
    if info.status == "not_checked":
        return [], None
    why = None
    if mode == "map":
        why = "--tflite map"
    elif graph.torch_model is None:
        why = ("there is no PyTorch model to convert (an ONNX file)" if info.status == "onnx_file"
               else "edge-sdk's LiteRT export converts encoders and ViTs, not decoder LLMs")
    else:
        why = litert_env_problem()
    if why is None:
        try:
            conv = convert(graph.torch_model, graph.model_kind or "text", graph.tokenizer, seq_len, work_dir)
        except Exception as exc:  # noqa: BLE001 - the converter fails in many ways; the report says how, and maps
            why = f"the conversion failed ({_one_line(exc)})"
        else:
            if conv.nodes:
                info.tflite_status = "converted"
                info.tflite_ops = count_builtins(conv.nodes)
                info.tflite_note = conv.note
                return conv.nodes, conv
            why = f"LiteRT could not load the converted file ({conv.error})"
    tfl = map_nodes(graph.static_nodes)
    info.tflite_ops = count_builtins(tfl)
    info.tflite_unmapped = unmapped_ops(tfl)
    info.tflite_status = "mapped"
    info.tflite_note = (f"mapped from the fixed-shape ONNX graph with data/op_support/onnx_to_tflite.yaml, not "
                        f"converted: {why}")
    return tfl, None


def build_report(model: str = "minilm", *, devices: str = "all", results_dir: str | Path | None = "results",
                 bundle_sha256: str | None = None, batch: int = 1, seq_len: int = 128, objective: str = "latency",
                 max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP, pareto_device: str | None = None,
                 profiles_dir: list[str] | None = None, work_dir: str | Path | None = None,
                 tflite: str = "auto") -> CompatReport:
    """The Python API behind `edge-sdk report`: one CompatReport for `model` over the selected device profiles.

    `tflite`: "auto" converts the model to LiteRT when edge-sdk's converter environment exists (tens of seconds)
    and reads the real builtin ops; "map" maps ONNX ops to builtins instead (instant, approximate)."""
    from ..modelspec import inspect_model
    from ..profiles import load_registry

    started = time.perf_counter()
    if objective not in OBJECTIVES:
        raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if tflite not in TFLITE_MODES:
        raise InputError(f"--tflite must be one of {', '.join(TFLITE_MODES)}, got {tflite!r}")
    cons = Constraints(max_quality_drop=max_quality_drop)
    cons.validate()
    reg = load_registry(profiles_dir or [])
    profiles = reg.select(devices)
    if not profiles:
        raise InputError(f"--devices {devices}: selects no device profile (expected all, a class such as mobile, "
                         f"or names)")
    names = [p.name for p in profiles]
    if pareto_device is None:
        pareto = "host" if "host" in names else names[0]
    else:
        pareto = reg.resolve(pareto_device)[0].name
        if pareto not in names:
            raise InputError(f"--pareto-device {pareto_device}: '{pareto}' is not among the selected devices "
                             f"({', '.join(names)})")
    spec = inspect_model(model, batch=batch, seq_len=seq_len)
    with tempfile.TemporaryDirectory(prefix="edge-sdk-report-", dir=work_dir) as tmp:
        graph = model_graph(model, spec, Path(tmp), seq_len=spec.seq_len)
        ort = None
        if graph.exported_path is not None:
            ort = check_ort_cpu(graph.exported_path, graph.exported_nodes, graph.info.opset or 17)
        tfl, converted = _tflite(graph, tflite, Path(tmp), spec.seq_len)
        graph.torch_model = graph.tokenizer = None  # done with PyTorch: free the weights before planning
    matched, ignored = collect_results(results_dir, model=model, model_name=spec.name, devices=set(names),
                                       bundle_sha256=bundle_sha256)
    reports = []
    for prof in profiles:
        mine = [m for m in matched if m.device == prof.name]
        reports.append(device_report(spec, prof, model=model, objective=objective, cons=cons, graph=graph, tfl=tfl,
                                     ort=ort, measured=mine, converted=converted))
    family = spec.transformer.family if spec.transformer else None
    notes = [f"P = predicted by edge-sdk's roofline cost model and quality priors (batch {spec.batch}, "
             f"{'context' if family == 'decoder' else 'sequence'} {spec.seq_len}); M = measured by `edge-sdk bench`. "
             f"Quality numbers are estimates until a build measures them.",
             "Op coverage: 'session' = a real onnxruntime session here; 'data' = the shipped op list named in the "
             "row (version, source and confidence in the sources table); 'unknown' = not checked."]
    return CompatReport(created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), model=model,
                        model_name=spec.name, family=family, params=spec.total_params, batch=spec.batch,
                        seq_len=spec.seq_len, devices_selected=devices, objective=objective,
                        max_quality_drop=max_quality_drop, graph=graph.info, ort_cpu=ort, devices=reports,
                        pareto_device=pareto, results_dir=str(results_dir) if results_dir is not None else None,
                        results_used=[m.measurement.file for m in matched], results_ignored=ignored,
                        op_data=_op_sources(), versions=tool_versions(), notes=notes,
                        seconds=round(time.perf_counter() - started, 2))
