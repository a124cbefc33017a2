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

import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InfeasibleError, InputError
from ..planner import DEFAULT_MAX_QUALITY_DROP, OBJECTIVES, RUNTIME_PRECISION, Constraints, plan_for_profile, \
    smallest_footprint
from ..schemas.graph import GraphNode, GraphOps, OpGraph, TfliteOps
from ..schemas.modelspec import ModelSpec
from ..schemas.plan import Plan, PlanSet
from ..schemas.profile import DeviceProfile
from ..schemas.passes import ExportOnnxConfig
from ..schemas.report import (PLAN_FLAG, CompatReport, DeviceReport, Measurement, MemoryFit, OpDataSource,
                              ParetoPoint, PlanLine, RuntimeCoverage, UnitPrecision)
from ..versions import tool_versions
from .coverage import ACCELERATOR_KINDS, runtime_coverage
from .generation import compare_generation
from .measured import MatchedResult, collect_results
from .spread import with_spread
from .op_data import support_lists, tflite_mapping
from .svg import fmt_mb
from .tflite_map import TfliteNode, count_builtins, map_nodes, unmapped_ops

UNCOMPRESSED = {"fp32", "fp16", "bf16"}
DEFAULT_OPSET = ExportOnnxConfig.model_fields["opset"].default
COMPRESSING_PASSES = {"structured_prune", "sparsity"}


def _pass_text(x) -> str:
    if x.kind == "export_onnx" and x.opset != DEFAULT_OPSET:
        return f"export_onnx (opset {x.opset})"
    return x.kind


def plan_line(p: Plan) -> PlanLine:
    r = p.runtime
    return PlanLine(summary=p.summary(), precision=p.precision, runtime=r.name, provider=r.provider, unit=r.unit,
                    format=r.format, passes=[_pass_text(x) for x in p.passes], layout=p.layout.describe(),
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


def _smallest_attempt(spec: ModelSpec, prof: DeviceProfile, cons: Constraints) -> MemoryFit | None:
    """For a device with no plan: the smallest footprint any costed candidate reaches (why it does not fit), the same
    number the planner's infeasibility message quotes."""
    found = smallest_footprint(spec, prof, cons)
    if found is None:
        return None
    m, what, per_device = found
    usable = prof.memory_usable_gb * 1000
    return MemoryFit(weights_mb=m.weights_mb, activations_mb=m.activations_mb, kv_cache_mb=m.kv_cache_mb,
                     overhead_mb=m.overhead_mb, total_mb=m.total_mb, usable_mb=usable, fits=m.total_mb <= usable,
                     per_device=per_device, basis=f"smallest candidate ({what}); no plan")


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


def _with_export_opset(p: Plan, opset: int) -> Plan | None:
    """The plan with its ONNX export at `opset` (None when it has no export that can be written at that opset)."""
    from pydantic import ValidationError

    passes = []
    for x in p.passes:
        if x.kind == "export_onnx":
            try:
                x = type(x).model_validate({**x.model_dump(), "opset": opset})
            except ValidationError:
                return None
        passes.append(x)
    if not any(x.kind == "export_onnx" for x in passes):
        return None
    return p.model_copy(update={"passes": passes})


def _not_the_best_plan(m: Measurement, best: Plan | None, device: str, spec: ModelSpec) -> str | None:
    """Why a measurement is not compared with this device's best-plan prediction; None when it measures that plan
    (same device, precision, runtime and provider, an unpruned plan, batch and padding as predicted)."""
    if best is None:
        return "no plan fits this device, so there is no prediction to compare it with"
    provider = m.provider_requested or m.provider_used
    what = f"{m.precision} {m.runtime}/{provider}"
    if m.built_for and m.built_for != device:
        return f"it measures a bundle built for {m.built_for} ({what}), not this device's plan"
    runtime = "onnxruntime" if m.runtime == "onnxruntime-genai" else m.runtime  # genai runs on onnxruntime
    if (m.precision, runtime, provider) != (best.precision, best.runtime.name, best.runtime.provider):
        return f"it measures {what}; the best plan here is {best.summary()}"
    if m.fell_back:
        return f"the run fell back to {m.provider_used}"
    if any(x.kind in COMPRESSING_PASSES for x in best.passes):
        return (f"the best plan prunes ({best.summary()}) and a benchmark result does not record how its bundle "
                f"was pruned")
    if m.batch != spec.batch or m.input_kind not in ("padded", "images", "decode"):
        return (f"it ran batch {m.batch} on {m.input_kind} inputs; the prediction is for batch {spec.batch} at "
                f"sequence {spec.seq_len}")
    return None


def _against_best(m: Measurement, best: Plan | None, device: str, spec: ModelSpec) -> Measurement:
    why = _not_the_best_plan(m, best, device, spec)
    gen = m.generation
    if gen is not None and gen.not_compared is not None:  # no prediction of its own bundle: the best plan's
        gen = compare_generation(gen, best.predicted if best is not None else None,
                                 None if why is None else f"not this device's best plan: {why}")
    if why is not None or best is None or m.p50_ms <= 0:
        return m.model_copy(update={"not_compared": why, "best_plan_over_measured": None, "generation": gen})
    return m.model_copy(update={"not_compared": None, "generation": gen,
                                "best_plan_over_measured": round(best.predicted.latency_ms / m.p50_ms, 4)})


def _tensorrt_version(prof: DeviceProfile) -> str | None:
    return next((r.version for r in prof.runtimes if r.name == "tensorrt" and r.version), None)


def device_report(spec: ModelSpec, prof: DeviceProfile, *, model: str, objective: str, cons: Constraints,
                  graph: OpGraph, tfl: list[TfliteNode], ort, measured: list[MatchedResult],
                  converted: TfliteOps | None = None) -> DeviceReport:
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
                            measured=[_against_best(m.measurement, None, prof.name, spec) for m in measured])
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
        reasons.append(f"uncompressed {least.precision} fits: {fmt_mb(least.predicted.memory_mb.total_mb)} of "
                       f"{fmt_mb(mem.usable_mb)} usable on {least.runtime.name}/{least.runtime.provider}"
                       + (f" ({least.layout.describe()})" if not least.layout.is_single else ""))
        if best.summary() != least.summary():
            speed = least.predicted.latency_ms / best.predicted.latency_ms if best.predicted.latency_ms else 1.0
            gain = f"{speed:.2g}x faster predicted" if speed >= 1.05 else "about as fast, smaller"
            reasons.append(f"the {objective} objective picks {best.summary()} ({gain})")
    else:
        verdict = "runs_with_plan"
        reasons.append(f"no uncompressed (fp32/fp16/bf16, unpruned) plan fits; the least compression that does: "
                       f"{least.summary()} ({fmt_mb(least.predicted.memory_mb.total_mb)} of "
                       f"{fmt_mb(mem.usable_mb)} usable, est. cosine drop {least.predicted.quality.cosine_drop:.3f})")
    older = _with_export_opset(best, plan_cov.export_opset) if plan_cov and plan_cov.export_opset else None
    if plan_cov is not None and older is not None and plan_cov.verdict != "full":
        refused = ", ".join(sorted({i.op for i in plan_cov.issues}))
        best = older
        verdict = "runs_with_plan"
        reasons.append(f"{plan_cov.runtime}/{plan_cov.provider} refuses {refused} as exported at opset "
                       f"{graph.info.opset}, so the plan exports at ONNX opset {plan_cov.export_opset}, where "
                       f"{refused} is written as ops it runs ({plan_cov.data_file}); `edge-sdk plan` does not choose "
                       f"the opset yet: set passes[export_onnx].opset to {plan_cov.export_opset} in the plan JSON "
                       f"before `edge-sdk build --plan`")
        plan_cov.summary = f"{plan_cov.summary} at opset {graph.info.opset}; all ops run at opset " \
                           f"{plan_cov.export_opset} (the plan's export)"
        plan_cov.verdict = "full"
    elif plan_cov is not None:
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
    meas = [_against_best(m.measurement, best, prof.name, spec) for m in measured]
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


def _tflite(graph: OpGraph, info: GraphOps, mode: str) -> tuple[list[TfliteNode], TfliteOps | None]:
    """The model's LiteRT builtins: those of the really converted model when the graph stage converted it (and
    mode is auto), else mapped from the fixed-shape ONNX graph. Fills the tflite fields of `info`."""
    if info.status == "not_checked":
        return [], None
    conv = graph.tflite if mode == "auto" else None
    if conv is not None and conv.ops:
        nodes = [TfliteNode(op, GraphNode(op=op, name=f"op{i}")) for i, op in enumerate(conv.ops)]
        info.tflite_status = "converted"
        info.tflite_ops = count_builtins(nodes)
        info.tflite_note = conv.note
        return nodes, conv
    if mode == "map":
        why = "--tflite map"
    elif conv is not None:
        why = f"LiteRT could not load the converted file ({conv.error})"
    else:
        why = graph.tflite_why or "the graph was made without a LiteRT conversion"
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
                 profiles_dir: list[str] | None = None, graph: OpGraph | None = None,
                 graph_cache: str | Path | None = None, tflite: str = "auto",
                 spec: ModelSpec | None = None, progress=None, calibration: bool = True,
                 calibrations_dir: str | Path | None = None) -> CompatReport:
    """The Python API behind `edge-sdk report`: one CompatReport for `model` over the selected device profiles.

    The model's op graph is an artifact of the graph stage (`edge_sdk.opgraph.make_graph`): pass it as `graph`, or it
    is read from the graph cache (`graph_cache`, default $EDGE_SDK_CACHE/graphs) and made there only when missing.
    `tflite`: "auto" uses the LiteRT builtins of the really converted model (the graph stage converts it when
    edge-sdk's converter environment exists); "map" maps ONNX ops to builtins instead (approximate)."""
    from ..opgraph import TFLITE_MODES, make_graph
    from ..modelspec import inspect_model
    from ..profiles import load_registry

    started = time.perf_counter()
    if objective not in OBJECTIVES:
        raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if tflite not in TFLITE_MODES:  # checked before minutes of work
        raise InputError(f"--tflite must be one of {', '.join(TFLITE_MODES)}, got {tflite!r}")
    cons = Constraints(max_quality_drop=max_quality_drop)
    cons.validate()
    reg = load_registry(profiles_dir or [])
    profiles = reg.select(devices)
    if not profiles:
        raise InputError(f"--devices {devices}: selects no device profile (expected all, a class such as mobile, "
                         f"or names)")
    from ..calibration import calibrated

    cal_notes: list[str] = []
    applied = []
    for p in profiles:  # every device's predictions rest on its newest matching calibration, named in the notes
        cp, used, ignored = calibrated(p, use=calibration, directory=calibrations_dir)
        applied.append(cp)
        cal_notes += [f"{p.name}: {line}" for line in ([used] if used else []) + ignored]
    profiles = applied
    names = [p.name for p in profiles]
    if pareto_device is None:
        pareto = "host" if "host" in names else names[0]
    else:
        pareto = reg.resolve(pareto_device)[0].name
        if pareto not in names:
            raise InputError(f"--pareto-device {pareto_device}: '{pareto}' is not among the selected devices "
                             f"({', '.join(names)})")
    spec = spec or inspect_model(model, batch=batch, seq_len=seq_len)
    if graph is None:
        graph, _ = make_graph(model, spec=spec, seq_len=spec.seq_len, tflite=tflite, cache_dir=graph_cache,
                              progress=progress)
    elif graph.seq_len != spec.seq_len or graph.model_name != spec.name:
        raise InputError(f"graph: made for {graph.model_name} at sequence {graph.seq_len}, but the report is for "
                         f"{spec.name} at sequence {spec.seq_len}; make it with `edge-sdk graph` for this model")
    info = graph.info.model_copy(deep=True)  # the report adds its LiteRT view; the artifact stays as made
    ort = graph.ort_cpu
    tfl, converted = _tflite(graph, info, tflite)
    matched, ignored = collect_results(results_dir, model=model, model_name=spec.name, devices=set(names),
                                       bundle_sha256=bundle_sha256)
    reports = []
    for prof in profiles:
        mine = [m for m in matched if m.device == prof.name]
        reports.append(with_spread(device_report(spec, prof, model=model, objective=objective, cons=cons,
                                                 graph=graph, tfl=tfl, ort=ort, measured=mine, converted=converted)))
    family = spec.transformer.family if spec.transformer else None
    notes = [f"P = predicted by edge-sdk's roofline cost model and quality priors (batch {spec.batch}, "
             f"{'context' if family == 'decoder' else 'sequence'} {spec.seq_len}); M = measured by `edge-sdk bench`; "
             f"P/M only where M measures the device's best plan on that device (else the reason is given). "
             f"Quality numbers are estimates until a build measures them.",
             "Op coverage: 'session' = a real onnxruntime session (LiteRT rows: a LiteRT interpreter) here; "
             "'data' = the shipped op list named in the "
             "row (version, source and confidence in the sources table); 'unknown' = not checked."] + cal_notes
    return CompatReport(created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), model=model,
                        model_name=spec.name, family=family, params=spec.total_params, batch=spec.batch,
                        seq_len=spec.seq_len, devices_selected=devices, objective=objective,
                        max_quality_drop=max_quality_drop, graph=info, ort_cpu=ort, devices=reports,
                        pareto_device=pareto, results_dir=str(results_dir) if results_dir is not None else None,
                        results_used=[m.measurement.file for m in matched], results_ignored=ignored,
                        op_data=_op_sources(), versions=tool_versions(), notes=notes,
                        seconds=round(time.perf_counter() - started, 2))
