"""Choosing plans: enumerate the space, cost every candidate, apply constraints, rank by the objective, and say why.

`plan()` is the Python API behind `edge-sdk plan`; it returns a PlanSet or raises InfeasibleError (exit 3) whose
message names the tightest constraint and what would make the model fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InfeasibleError, InputError
from ..schemas.passes import (DistillConfig, ExportGenaiConfig, ExportOnnxConfig, ExportOpenvinoConfig,
                              ExportTfliteConfig,
                              QuantizeOnnxConfig, StructuredPruneConfig, UnstructuredSparsityConfig)
from ..schemas.profile import DeviceProfile
from . import priors
from .costmodel import BlockCosts, CostEstimate, block_costs, predict
from ..schemas.plan import (MemoryBreakdown, ParallelLayout, Plan, PlanSet, Prediction,
                     QualityEstimate, RuntimeChoice, Stage)
from .space import (GENAI_EXECUTION_PROVIDERS, NEAR_TIE, PLAN_PRECISIONS, RuntimeUnit, decoder_build_support,
                    float_kinds, int8_reduce_range, layouts, precision_support, pruning_grid, ranking_factor,
                    runtime_units, static_int8_is_mixed)

OBJECTIVES = ("latency", "throughput", "size", "quality")
RECOVERY_MAX_STEPS = 1_000_000  # a planned recovery is a time budget (--recovery-minutes); steps never end it first
DEFAULT_MAX_QUALITY_DROP = 0.02


@dataclass
class Constraints:
    latency_ms: float | None = None
    max_size_mb: float | None = None
    max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP
    runtime: str | None = None  # only runtimes whose name or provider matches (e.g. onnxruntime, litert, tensorrt)
    recovery_minutes: float = priors.DEFAULT_RECOVERY_MINUTES  # distillation a pruned plan gets (part of the plan)

    def validate(self) -> None:
        if self.latency_ms is not None and self.latency_ms <= 0:
            raise InputError(f"--latency-ms must be > 0, got {self.latency_ms}")
        if self.max_size_mb is not None and self.max_size_mb <= 0:
            raise InputError(f"--max-size-mb must be > 0, got {self.max_size_mb}")
        if not 0 <= self.max_quality_drop < 1:
            raise InputError(f"--max-quality-drop must be in [0, 1) (a cosine drop), got {self.max_quality_drop}")
        if not 0 <= self.recovery_minutes <= priors.MAX_RECOVERY_MINUTES:
            raise InputError(f"--recovery-minutes must be in [0, {priors.MAX_RECOVERY_MINUTES:g}], got "
                             f"{self.recovery_minutes}")


@dataclass
class Candidate:
    target: RuntimeUnit
    precision: str
    head_ratio: float
    ffn_ratio: float
    drop_layers: int
    sparsity: str  # none | unstructured | 2:4
    dp: int
    tp: int
    pp: int
    pred: CostEstimate
    quality_drop: float
    quality_basis: str
    failed: list[str] = field(default_factory=list)  # constraint names it violates
    recovery_minutes: float = priors.DEFAULT_RECOVERY_MINUTES  # distillation budget of a pruned/sparse plan

    @property
    def pruned(self) -> bool:
        return bool(self.head_ratio or self.ffn_ratio or self.drop_layers)

    def prune_text(self) -> str:
        bits = [f"heads -{self.head_ratio:.1%}" if self.head_ratio else "",
                f"FFN -{self.ffn_ratio:.1%}" if self.ffn_ratio else "",
                f"layers -{self.drop_layers}" if self.drop_layers else ""]
        return ", ".join(b for b in bits if b) or "no pruning"

    def describe(self) -> str:
        bits = [self.precision, self.target.label]
        if self.pruned:
            bits.append(self.prune_text())
        if self.sparsity != "none":
            bits.append(f"{self.sparsity} sparsity")
        if self.dp * self.tp * self.pp > 1:
            bits.append(f"dp{self.dp}·tp{self.tp}·pp{self.pp}")
        return " ".join(bits)


def _quality(cand_precision: str, target: RuntimeUnit, hr: float, fr: float, drop: int, n_layers: int,
             sparsity: str, recovery_minutes: float = priors.DEFAULT_RECOVERY_MINUTES) -> tuple[float, str]:
    if target.runtime.name == "openvino" and cand_precision in priors.OPENVINO_PRIORS:
        p = priors.OPENVINO_PRIORS[cand_precision]
    elif cand_precision == "int8_dynamic" and target.runtime.name == "litert":
        p = priors.LITERT_INT8_DYNAMIC
    elif cand_precision == "int8_static" and not static_int8_is_mixed(target):
        p = priors.FULL_INTEGER_STATIC
    else:
        p = priors.PRECISION_PRIORS[cand_precision]
    parts = [p.drop]
    basis = [p.basis]
    if hr or fr or drop:
        d = priors.pruning_drop(hr, fr, drop / n_layers if n_layers else 0.0, recovery_minutes)
        parts.append(d)
        basis.append(f"≈ {d:.3f} drop from {priors.pruning_basis(recovery_minutes)}")
    if sparsity == "unstructured":
        parts.append(priors.UNSTRUCTURED_50.drop)
        basis.append(priors.UNSTRUCTURED_50.basis)
    elif sparsity == "2:4":
        parts.append(priors.SPARSE_24.drop)
        basis.append(priors.SPARSE_24.basis)
    return priors.combine(*parts), "; ".join(basis)


def _usable_mb(profile: DeviceProfile) -> float:
    return profile.memory_usable_gb * 1000.0


def enumerate_candidates(spec, profile: DeviceProfile, cons: Constraints) -> tuple[list[Candidate],
                                                                                   dict[str, list[str]],
                                                                                   list[Candidate]]:
    """All costed candidates (supported ones), rejected-before-costing reasons, and unsupported-but-costed
    candidates (for 'int4 would need X GB but...' hints)."""
    decode = spec.transformer is not None and spec.transformer.family == "decoder"
    tgts, rejected = runtime_units(profile)
    if cons.runtime:
        want = cons.runtime.lower()
        keep = [t for t in tgts if want in (t.runtime.name.lower(), t.runtime.provider.lower(), t.label.lower())]
        if not keep:
            names = sorted({t.runtime.name for t in tgts} | {t.label for t in tgts})
            raise InputError(f"--runtime {cons.runtime}: {profile.name} has no such buildable runtime "
                             f"(expected one of {', '.join(names)})")
        for t in tgts:
            if t not in keep:
                rejected.setdefault(f"not the requested --runtime {cons.runtime}", []).append(t.label)
        tgts = keep
    grid = pruning_grid(spec, decode)
    lays = layouts(profile, spec, spec.batch)
    n_layers = spec.transformer.num_layers if spec.transformer else 0
    cands: list[Candidate] = []
    hints: list[Candidate] = []
    if decode:
        rejected.setdefault("structured pruning of decoder LLMs: needs long recovery training; edge-sdk plans "
                            "quantization and parallel layouts for decoders", []).append("heads/FFN/layer pruning")
    cache: dict[tuple, BlockCosts] = {}

    def costs(t: RuntimeUnit, prec: str, sparse: bool, dp: int = 1) -> BlockCosts:
        key = (id(t), prec, sparse, dp)
        if key not in cache:
            cache[key] = block_costs(spec, profile, t.unit, prec, sparse_24=sparse, decode=decode,
                                     float_kinds=float_kinds(t, prec), runtime=t.runtime, batch_scale=1.0 / dp)
        return cache[key]

    kv_bytes = 2.0
    for t in tgts:
        for prec in PLAN_PRECISIONS:
            why = precision_support(profile, t, prec)
            kv_el = 4.0 if (t.unit.kind == "cpu" and prec in ("fp32", "int8_dynamic")) else kv_bytes
            if why is not None:
                rejected.setdefault(why, []).append(t.label)
                # cost the plain variant anyway, for infeasibility hints
                for dp, tp, pp in lays:
                    pred = predict(spec, profile, t.runtime, t.unit, prec, costs(t, prec, False, dp), tp=tp, pp=pp,
                                   dp=dp, decode=decode, kv_bytes_per_elem=kv_el)
                    q, basis = _quality(prec, t, 0, 0, 0, n_layers, "none")
                    hints.append(Candidate(t, prec, 0, 0, 0, "none", dp, tp, pp, pred, q, basis, [why]))
                continue
            sparsities = ["none", "unstructured"]
            if t.unit.has_sparse_tensor_cores and t.runtime.name == "tensorrt" and not decode:
                sparsities.append("2:4")
            t_lays = lays if t.unit.kind == "gpu" else [(1, 1, 1)]  # accelerator_count counts GPUs
            for sp in sparsities:
                for hr, fr, drop in grid:
                    for dp, tp, pp in t_lays:
                        c = costs(t, prec, sp == "2:4", dp)
                        # Unstructured sparsity never speeds up dense kernels: cost it once, unpruned, to show
                        # why it loses. Multi-device layouts are costed for the unpruned model only (pruning and
                        # sharding are alternatives for fitting; combining them multiplies the space for nothing).
                        if (sp == "unstructured" or dp * tp * pp > 1) and (hr or fr or drop):
                            continue
                        if sp == "unstructured" and dp * tp * pp > 1:
                            continue
                        pred = predict(spec, profile, t.runtime, t.unit, prec, c, head_ratio=hr, ffn_ratio=fr,
                                       drop_layers=drop, tp=tp, pp=pp, dp=dp, decode=decode,
                                       kv_bytes_per_elem=kv_el, sparse_24=sp == "2:4")
                        q, basis = _quality(prec, t, hr, fr, drop, n_layers, sp, cons.recovery_minutes)
                        cands.append(Candidate(t, prec, hr, fr, drop, sp, dp, tp, pp, pred, q, basis,
                                               recovery_minutes=cons.recovery_minutes))
    usable = _usable_mb(profile)
    for c in cands:
        if c.pred.total_mb > usable:
            c.failed.append("memory")
        if cons.latency_ms is not None and c.pred.latency_ms > cons.latency_ms:
            c.failed.append("latency")
        if cons.max_size_mb is not None and c.pred.size_mb > cons.max_size_mb:
            c.failed.append("size")
        if c.quality_drop > cons.max_quality_drop + 1e-12:
            c.failed.append("quality")
    if decode:  # single-device decoders: only what `build` makes, where it makes one for that unit (space.py)
        units = {t.unit.name for t in runtime_units(profile)[0] if decoder_build_support(t, "fp32") is None}
        for c in cands:
            if c.dp * c.tp * c.pp == 1 and c.target.unit.name in units \
                    and decoder_build_support(c.target, c.precision) is not None:
                c.failed.append("runtime")  # costed for comparison only
    return cands, rejected, hints


def _rank_key(objective: str, spec=None):
    if objective == "latency":
        return lambda c: (c.pred.latency_ms * ranking_factor(c, spec), c.quality_drop, c.pred.size_mb,
                          c.dp * c.tp * c.pp)
    if objective == "throughput":
        return lambda c: (-c.pred.throughput_per_s / ranking_factor(c, spec), c.quality_drop, c.pred.latency_ms)
    if objective == "size":
        return lambda c: (c.pred.size_mb, c.quality_drop, c.pred.latency_ms)
    return lambda c: (c.quality_drop, c.pred.latency_ms, c.pred.size_mb)


RANKED_HEAD = 40  # only the head of the ranking is shown; the rest keeps the plain objective order


def rank(cands: list[Candidate], objective: str, spec=None) -> list[Candidate]:
    """Sort by the objective; for latency/throughput, candidates within NEAR_TIE of the best remaining one are
    ordered by estimated quality drop, then size (a 2 % speed-up is not worth pruning risk). Latency and throughput
    are compared with `ranking_factor` applied, and within NEAR_TIE a plan without it comes first: a fixed-shape
    artifact for text must be predicted more than FIXED_SHAPE_MARGIN faster."""
    ordered = sorted(cands, key=_rank_key(objective, spec))
    if objective not in ("latency", "throughput"):
        return ordered
    factor = {id(c): ranking_factor(c, spec) for c in ordered}
    if objective == "latency":
        def near(c, head):
            return c.pred.latency_ms * factor[id(c)] <= head.pred.latency_ms * factor[id(head)] * (1 + NEAR_TIE)
    else:
        def near(c, head):
            return c.pred.throughput_per_s / factor[id(c)] >= head.pred.throughput_per_s / factor[id(head)] * \
                (1 - NEAR_TIE)
    out: list[Candidate] = []
    rest = ordered
    while rest and len(out) < RANKED_HEAD:
        head = rest[0]
        band = [c for c in rest if near(c, head)]
        pick = min(band, key=lambda c: (factor[id(c)], c.quality_drop, c.pred.size_mb, c.pred.latency_ms))
        out.append(pick)
        rest = [c for c in rest if c is not pick]
    return out + rest


def _dominated(a: Candidate, b: Candidate) -> bool:
    """b dominates a on (latency, size, quality drop)."""
    av = (a.pred.latency_ms, a.pred.size_mb, a.quality_drop)
    bv = (b.pred.latency_ms, b.pred.size_mb, b.quality_drop)
    return all(y <= x + 1e-9 for x, y in zip(av, bv)) and any(y < x - 1e-9 for x, y in zip(av, bv))


def pareto_front(cands: list[Candidate], limit: int = 8) -> list[Candidate]:
    front = [c for c in cands if not any(_dominated(c, o) for o in cands)]
    uniq: dict[tuple, Candidate] = {}
    for c in sorted(front, key=lambda c: c.pred.latency_ms):
        key = (round(c.pred.latency_ms, 3), round(c.pred.size_mb, 2), round(c.quality_drop, 4))
        uniq.setdefault(key, c)
    front = list(uniq.values())
    if len(front) > limit:  # keep the ends and spread the rest
        step = (len(front) - 1) / (limit - 1)
        front = [front[round(i * step)] for i in range(limit)]
    return front


def _passes(c: Candidate, spec, profile: DeviceProfile, max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP) -> list:
    """The plan's pass list: exactly what a build runs, in order (gradual pruning, when wanted, is
    `StructuredPruneConfig(increments=K, recovery=DistillConfig(...))`; the planner plans one-shot + distill)."""
    passes: list = []
    if c.pruned:
        passes.append(StructuredPruneConfig(head_ratio=round(c.head_ratio, 6), ffn_ratio=round(c.ffn_ratio, 6),
                                            drop_layers=c.drop_layers, allocation="global"))  # what priors measured
    if c.sparsity != "none":
        passes.append(UnstructuredSparsityConfig(sparsity=0.5, pattern="2:4" if c.sparsity == "2:4"
                                                 else "unstructured"))
    if (c.pruned or c.sparsity != "none") and c.recovery_minutes > 0:   # the recovery budget is part of the plan
        passes.append(DistillConfig(max_steps=RECOVERY_MAX_STEPS, max_seconds=round(c.recovery_minutes * 60, 3)))
    fmt = c.target.runtime.format
    if fmt == "openvino":
        q = {"fp32": "none", "bf16": "none", "fp16": "none", "int8_static": "int8", "int8_dynamic": "int8_weights",
             "int4_weight_only": "int4_weights"}[c.precision]
        hint = {"bf16": "bf16", "fp16": "f16"}.get(c.precision, "f32")
        # accuracy control keeps NNCF's own drop well inside the build's quality budget
        text = spec.transformer is None or spec.transformer.family != "vision"
        passes.append(ExportOpenvinoConfig(quantize=q, max_drop=round(min(0.005, max_quality_drop / 2), 6) or 0.001,
                                           inference_precision=hint,
                                           static_shape=[spec.batch, spec.seq_len] if text else None))
    elif fmt == "tflite":
        q = {"fp32": "none", "fp16": "fp16", "int8_dynamic": "dynamic_int8", "int8_static": "full_int8"}[c.precision]
        passes.append(ExportTfliteConfig(quantize=q, seq_len=spec.seq_len))
    elif spec.transformer is not None and spec.transformer.family == "decoder":
        # decoders: onnxruntime-genai's model builder (KV cache, block-wise int4/int8 weights), not export_onnx
        passes.append(ExportGenaiConfig(precision={"int4_weight_only": "int4", "int8_dynamic": "int8",
                                                   "int8_static": "int8", "fp16": "fp16", "bf16": "fp16"}.get(
                                            c.precision, "fp32"),
                                        execution_provider=GENAI_EXECUTION_PROVIDERS.get(
                                            c.target.runtime.provider,
                                            "cuda" if c.target.unit.kind == "gpu" else "cpu"),
                                        context_length=spec.seq_len))
    else:
        passes.append(ExportOnnxConfig())
        mode = {"fp16": "fp16", "bf16": "fp16", "int8_dynamic": "dynamic_int8", "int8_static": "static_int8",
                "int4_weight_only": "int4_weight_only"}.get(c.precision)
        if mode:
            # ORT's CPU EP: which MatMuls stay float is measured per model (passes/quantize_sensitivity.py); the
            # cost model still prices the FFN down-projections in float, the usual outcome on BERT-family models
            measured = mode == "static_int8" and c.target.runtime.provider == "CPUExecutionProvider"
            passes.append(QuantizeOnnxConfig(mode=mode, reduce_range=int8_reduce_range(profile, c.target),
                                             **({"sensitivity": True, "exclude_ffn_down": False,
                                                 "max_drop": round(min(0.005, max_quality_drop / 2), 6) or 0.001}
                                                if measured else {})))
    return passes


def _to_plan(c: Candidate, spec, profile: DeviceProfile, model: str, objective: str,
             rationale: dict[str, str], max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP) -> Plan:
    p = c.pred
    stages = []
    if c.pp > 1:
        for i, ((a, b), ms) in enumerate(zip(p.stages, p.stage_ms)):
            stages.append(Stage(index=i, first_layer=a, last_layer=b, predicted_ms=round(ms, 4),
                                memory_mb=round(p.per_device_mb[0], 1)))
    rt = c.target.runtime
    return Plan(
        model=model, model_name=spec.name, device=profile.name, batch=spec.batch, seq_len=spec.seq_len,
        precision=c.precision,  # type: ignore[arg-type]
        runtime=RuntimeChoice(name=rt.name, provider=rt.provider, unit=rt.unit, format=rt.format, version=rt.version),
        passes=_passes(c, spec, profile, max_quality_drop),
        layout=ParallelLayout(dp=c.dp, tp=c.tp, pp=c.pp, stages=stages, communication_ms=round(p.comm_ms, 4)),
        predicted=Prediction(
            latency_ms=round(p.latency_ms, 4), throughput_per_s=round(p.throughput_per_s, 3),
            memory_mb=MemoryBreakdown(weights_mb=round(p.weights_mb, 3), activations_mb=round(p.activations_mb, 3),
                                      kv_cache_mb=round(p.kv_cache_mb, 3), overhead_mb=round(p.overhead_mb, 1),
                                      total_mb=round(p.total_mb, 3),
                                      per_device_mb=[round(x, 1) for x in p.per_device_mb]),
            size_mb=round(p.size_mb, 3),
            quality=QualityEstimate(expected_cosine=round(1 - c.quality_drop, 4), cosine_drop=round(c.quality_drop, 4),
                                    risk=priors.risk_label(c.quality_drop), basis=c.quality_basis),  # type: ignore
            bound=p.bound, generation=_generation(c, spec, profile)),  # type: ignore[arg-type]
        rationale=rationale, objective=objective)  # type: ignore[arg-type]


def _generation(c: Candidate, spec, profile: DeviceProfile):
    """Decoders: TTFT at the plan's prompt length, prefill and decode tokens/s (planner/generation.py)."""
    if spec.transformer is None or spec.transformer.family != "decoder":
        return None
    from .generation import predict_generation

    return predict_generation(spec, profile, c.target, c.precision, c.pred,
                              float_kinds=float_kinds(c.target, c.precision), sparse_24=c.sparsity == "2:4",
                              dp=c.dp, tp=c.tp, pp=c.pp)


def plan_for_profile(spec, profile: DeviceProfile, *, model: str, objective: str = "latency",
                     constraints: Constraints | None = None, top: int = 3, device_note: str | None = None) -> PlanSet:
    """Plan one ModelSpec for one profile. Raises InfeasibleError (exit 3) when nothing fits."""
    from . import explain

    cons = constraints or Constraints()
    cons.validate()
    if objective not in OBJECTIVES:
        raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if top < 1:
        raise InputError(f"--top must be ≥ 1, got {top}")
    cands, pre, hints = enumerate_candidates(spec, profile, cons)
    feasible = [c for c in cands if not c.failed]
    if not feasible:
        raise InfeasibleError(explain.infeasible_message(spec, profile, cands, hints, pre, cons))
    feasible = rank(feasible, objective, spec)
    chosen: list[Candidate] = []
    seen = set()
    for c in feasible:  # top plans should differ in something a user can see
        key = (c.target.label, c.precision, c.pruned, c.sparsity, c.dp, c.tp, c.pp)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(c)
        if len(chosen) == top:
            break
    setattr(cons, "objective", objective)
    plans = [_to_plan(c, spec, profile, model, objective, explain.rationale(c, feasible, cands, profile, spec, cons),
                     cons.max_quality_drop)
             for c in chosen]
    front = [_to_plan(c, spec, profile, model, objective, {}, cons.max_quality_drop) for c in pareto_front(feasible)]
    return PlanSet(model=model, model_name=spec.name, device=profile.name, device_note=device_note, model_spec=spec,
                   objective=objective,  # type: ignore[arg-type]
                   constraints={"latency_ms": cons.latency_ms, "max_size_mb": cons.max_size_mb,
                                "max_quality_drop": cons.max_quality_drop, "memory_usable_gb": profile.memory_usable_gb,
                                "recovery_minutes": cons.recovery_minutes},
                   plans=plans, pareto=front, rejected=explain.rejections(pre, cands, cons, profile, chosen),
                   candidates_considered=len(cands))


def smallest_footprint(spec, profile: DeviceProfile, cons: Constraints) -> tuple[MemoryBreakdown, str, bool] | None:
    """For a device with no plan: the smallest memory any costed candidate reaches, its description, and whether
    it is per device (a parallel layout) — the same number the infeasibility message quotes. None when nothing
    could be costed at all."""
    cands, _, hints = enumerate_candidates(spec, profile, cons)
    pool = list(cands) or list(hints)  # hints combine unsupported precisions: only when nothing else was costed
    if not pool:
        return None
    c = min(pool, key=lambda c: c.pred.total_mb)
    p = c.pred
    mem = MemoryBreakdown(weights_mb=p.weights_mb, activations_mb=p.activations_mb, kv_cache_mb=p.kv_cache_mb,
                          overhead_mb=p.overhead_mb, total_mb=p.total_mb)
    return mem, c.describe(), c.dp * c.tp * c.pp > 1


def predict_plan(plan: Plan, profile: DeviceProfile) -> Prediction | None:
    """What `profile` (e.g. with a calibration applied) predicts for an existing plan: the same candidate costed
    again. None when the plan carries no ModelSpec or its runtime/precision is not among the profile's candidates."""
    spec = plan.model_spec
    if spec is None:
        return None
    prune = plan.pass_of("structured_prune")
    sp = plan.pass_of("sparsity")
    want = (plan.runtime.name, plan.runtime.provider, plan.runtime.unit, plan.precision,
            round(prune.head_ratio, 6) if prune else 0.0, round(prune.ffn_ratio, 6) if prune else 0.0,
            prune.drop_layers if prune else 0, sp.pattern if sp else "none",
            plan.layout.dp, plan.layout.tp, plan.layout.pp)
    d = plan.pass_of("distill")  # no distill pass: no recovery; one without a time budget (older plans): the default
    minutes = 0.0 if d is None else d.max_seconds / 60 if d.max_seconds else priors.STEP_BUDGET_MINUTES
    cands, _, _ = enumerate_candidates(spec, profile, Constraints(max_quality_drop=1.0, recovery_minutes=minutes))
    for c in cands:
        have = (c.target.runtime.name, c.target.runtime.provider, c.target.unit.name, c.precision,
                round(c.head_ratio, 6), round(c.ffn_ratio, 6), c.drop_layers, c.sparsity, c.dp, c.tp, c.pp)
        if have == want:
            return _to_plan(c, spec, profile, plan.model, plan.objective, {}).predicted
    return None
