"""Why a plan has the values it has, why alternatives were rejected, and why nothing fits (when nothing does)."""

from __future__ import annotations

from collections import defaultdict

from ..schemas.modelspec import ModelSpec
from ..schemas.profile import DeviceProfile
from ..schemas.plan import Rejection
from .space import (DECODER_RUNTIME_REASON, FIXED_SHAPE_MARGIN, INT32_ACCUMULATE_ISA, NEAR_TIE, decoder_build_support,
                    pays_full_length)

CONSTRAINT_FLAG = {"memory": "usable memory", "latency": "--latency-ms", "size": "--max-size-mb",
                   "quality": "--max-quality-drop", "runtime": "a buildable decoder runtime"}


def _gb(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


def _best(cands, key):
    return min(cands, key=key) if cands else None


def _standing(ms: float, fastest_other: float, fixed_passed_over: bool) -> str:
    if ms <= fastest_other:
        return "fastest"
    if fixed_passed_over:
        return "fastest once fixed shapes are counted"
    return f"within {NEAR_TIE:.0%} of the fastest" if ms <= fastest_other * (1 + NEAR_TIE) else "chosen by objective"


def rationale(best, feasible, cands, profile: DeviceProfile, spec: ModelSpec, cons) -> dict[str, str]:
    lat = lambda c: c.pred.latency_ms  # noqa: E731
    same_shape = [c for c in feasible if (c.head_ratio, c.ffn_ratio, c.drop_layers, c.sparsity, c.dp, c.tp, c.pp)
                  == (best.head_ratio, best.ffn_ratio, best.drop_layers, best.sparsity, best.dp, best.tp, best.pp)]
    out: dict[str, str] = {}

    # precision
    alts = []
    for prec in sorted({c.precision for c in same_shape if c.target == best.target} - {best.precision}):
        a = _best([c for c in same_shape if c.target == best.target and c.precision == prec], lat)
        alts.append(f"{prec} {a.pred.latency_ms:.3g} ms/{a.pred.size_mb:.0f} MB")
    line = (f"{best.precision}: predicted {best.pred.latency_ms:.3g} ms, {best.pred.size_mb:.1f} MB, "
            f"est. cosine drop {best.quality_drop:.3f}")
    if alts:
        line += f" (vs {', '.join(alts)} on the same runtime)"
    unit = best.target.unit
    if unit.kind == "cpu" and best.precision.startswith("int8") and profile.architecture == "x86_64":
        fp32 = _best([c for c in same_shape if c.target == best.target and c.precision == "fp32"], lat)
        int32_acc = sorted(INT32_ACCUMULATE_ISA & set(profile.isa_features))
        if fp32 and not int32_acc:
            line += (f"; no VNNI on this CPU, so int8 buys size ({fp32.pred.size_mb / best.pred.size_mb:.1f}× smaller)"
                     f" more than speed ({fp32.pred.latency_ms / best.pred.latency_ms:.2f}× faster)")
        elif fp32:
            line += (f"; {'/'.join(int32_acc)} on this CPU: int8 GEMMs accumulate in int32 "
                     f"({fp32.pred.latency_ms / best.pred.latency_ms:.2f}× faster and "
                     f"{fp32.pred.size_mb / best.pred.size_mb:.1f}× smaller than fp32)")
    if unit.kind == "tpu":
        line += "; the Edge TPU runs full-integer int8 only (ops it lacks fall back to the CPU: see `edge-sdk report`)"
    out["precision"] = line

    # runtime
    others = []
    for tgt in {c.target for c in feasible} - {best.target}:
        a = _best([c for c in feasible if c.target == tgt], lat)
        others.append((a.pred.latency_ms, f"{tgt.label} on {tgt.unit.name} best {a.pred.latency_ms:.3g} ms"))
    for tgt in {c.target for c in cands} - {c.target for c in feasible}:
        a = _best([c for c in cands if c.target == tgt], lambda c: (len(c.failed), c.quality_drop, c.pred.latency_ms))
        why = {"quality": f"est. cosine drop {a.quality_drop:.3f} > budget", "memory": "does not fit",
               "latency": "too slow", "size": "too large", "runtime": "no decoder build for it"}
        others.append((float("inf"), f"{tgt.label} on {tgt.unit.name} rejected ({a.precision} "
                                     f"{a.pred.latency_ms:.3g} ms: {', '.join(why[f] for f in a.failed)})"))
    others.sort()
    fixed = _best([c for c in feasible if pays_full_length(c, spec) and c.target != best.target], lat)
    passed_over = fixed is not None and not pays_full_length(best, spec) and \
        fixed.pred.latency_ms < best.pred.latency_ms * (1 + NEAR_TIE)
    out["runtime"] = (f"{best.target.label} on the {unit.name} ({unit.kind}): "
                      + ("the only buildable runtime that fits" if not others else
                         f"{_standing(best.pred.latency_ms, others[0][0], passed_over)} of "
                         f"{len(others) + 1} runtimes ({'; '.join(o for _, o in others[:3])})"))
    if best.target.runtime.format == "engine":
        out["runtime"] += "; edge-sdk ships ONNX and TensorRT compiles the engine on the device"
    if passed_over:
        out["runtime"] += (f"; {fixed.target.label}'s artifact has fixed shapes: every text would run padded to "
                           f"{spec.seq_len} tokens, where this one runs it at its own length, so a fixed-shape plan "
                           f"must be predicted more than {FIXED_SHAPE_MARGIN:.0%} faster to rank first")
    if any("runtime" in c.failed for c in cands):
        out["runtime"] += (f"; {DECODER_RUNTIME_REASON}, so the other runtimes on that unit are costed for "
                           f"comparison only")
    decoder = spec.transformer is not None and spec.transformer.family == "decoder"
    why_not = decoder_build_support(best.target, best.precision) if decoder and best.dp * best.tp * best.pp == 1 \
        else None
    if why_not:
        out["runtime"] += (f"; `edge-sdk build` cannot make this plan yet ({why_not}; the profile lists neither on "
                           f"the {unit.name}): plan with --runtime onnxruntime for a buildable one")

    # pruning
    if best.pruned:
        unpruned = _best([c for c in feasible if not c.pruned and c.target == best.target
                          and c.precision == best.precision], lat)
        ref = f" vs {unpruned.pred.latency_ms:.3g} ms unpruned" if unpruned else ""
        out["pruning"] = (f"{best.prune_text()}: "
                          f"{best.pred.latency_ms:.3g} ms{ref}; est. drop within budget "
                          f"{cons.max_quality_drop}; the build recovers with {cons.recovery_minutes:g} min of "
                          f"label-free distillation (--recovery-minutes) and measures")
    elif spec.transformer is None or (spec.transformer.family == "decoder"):
        out["pruning"] = "none: structured pruning is planned for encoder/ViT models only"
    else:
        pr = [c for c in cands if c.pruned and c.target == best.target and c.precision == best.precision
              and c.sparsity == "none"]
        fast = _best(pr, lat)
        if fast is None:
            out["pruning"] = "none"
        elif "quality" in fast.failed:
            mild = _best([c for c in pr if "quality" in c.failed], lambda c: c.quality_drop)
            out["pruning"] = (f"none: pruning would reach {fast.pred.latency_ms:.3g} ms, but even the mildest "
                              f"option ({mild.prune_text()}) has est. cosine drop {mild.quality_drop:.3f} > "
                              f"--max-quality-drop {cons.max_quality_drop} after {cons.recovery_minutes:g} min of "
                              f"recovery (more --recovery-minutes lowers it)")
        else:
            out["pruning"] = f"none: unpruned already best for the {best_objective_word(cons)} objective"

    # sparsity
    if best.sparsity == "2:4":
        out["sparsity"] = "2:4: this unit has sparse tensor cores (2× GEMM peak) and TensorRT uses them"
    else:
        sp = "; 2:4 needs sparse tensor cores (Ampere or newer) and TensorRT" if not unit.has_sparse_tensor_cores \
            else "; 2:4 costs est. quality beyond the budget or is slower here"
        out["sparsity"] = "none: unstructured sparsity does not speed up dense kernels nor shrink a dense artifact" + sp

    # layout
    usable = profile.memory_usable_gb * 1000
    if best.dp * best.tp * best.pp == 1:
        out["layout"] = (f"single device: needs {_gb(best.pred.total_mb)} of {_gb(usable)} usable"
                         + (f" (one of {profile.accelerator_count} accelerators)" if profile.accelerator_count > 1
                            else ""))
    else:
        single = _best([c for c in cands if c.dp * c.tp * c.pp == 1 and c.precision == best.precision
                        and c.target == best.target], lat)
        why = ""
        if single is not None and "memory" in single.failed:
            why = f"{best.precision} weights need {_gb(single.pred.total_mb)}, more than one accelerator's " \
                  f"{_gb(usable)}; "
        elif single is not None:
            why = f"{best.pred.latency_ms:.3g} ms vs {single.pred.latency_ms:.3g} ms on one accelerator; "
        out["layout"] = (f"dp={best.dp} × tp={best.tp} × pp={best.pp}: {why}per device "
                         f"{_gb(best.pred.per_device_mb[0])}; communication {best.pred.comm_ms:.3g} ms "
                         f"(tp: 2 all-reduces per layer over {profile.interconnect_bandwidth_gbps:g} GB/s"
                         f"{'; pp: stages balanced by predicted time' if best.pp > 1 else ''})")
    p = best.pred
    out["memory"] = (f"weights {_gb(p.weights_mb)} + activations {_gb(p.activations_mb)}"
                     + (f" + KV cache {_gb(p.kv_cache_mb)}" if p.kv_cache_mb else "")
                     + f" + runtime {_gb(p.overhead_mb)} = {_gb(p.total_mb)} per device of {_gb(usable)} usable")
    decode = spec.transformer is not None and spec.transformer.family == "decoder"
    out["workload"] = (f"batch {spec.batch}, " + (f"one generated token at context {spec.seq_len}" if decode
                                                 else f"sequence {spec.seq_len}") + f"; {p.bound}-bound")
    out["quality"] = f"estimate, not measured: {best.quality_basis}"
    return out


def best_objective_word(cons) -> str:
    return getattr(cons, "objective", "latency")


def rejections(pre: dict[str, list[str]], cands, cons, profile: DeviceProfile, chosen) -> list[Rejection]:
    """Group everything not chosen by reason. Costed candidates are grouped by the constraint they break."""
    out = [Rejection(reason=r, alternatives=sorted(set(a))) for r, a in pre.items()]
    by: dict[str, list] = defaultdict(list)
    for c in cands:
        for f in c.failed:
            by[f].append(c)
    usable = profile.memory_usable_gb * 1000
    for f, group in by.items():
        if f == "memory":
            reason = f"does not fit {_gb(usable)} usable memory"
        elif f == "quality":
            reason = f"estimated cosine drop above --max-quality-drop {cons.max_quality_drop}"
        elif f == "latency":
            reason = f"predicted latency above --latency-ms {cons.latency_ms}"
        elif f == "runtime":
            reason = f"single-device decoder plans `edge-sdk build` cannot make: {DECODER_RUNTIME_REASON}"
        else:
            reason = f"artifact above --max-size-mb {cons.max_size_mb}"
        uniq = sorted({c.describe() for c in group})
        shown = uniq[:6] + ([f"… and {len(uniq) - 6} more"] if len(uniq) > 6 else [])
        out.append(Rejection(reason=reason, alternatives=shown))
    return out


def _value(constraint: str, c, usable_mb: float) -> str:
    return {"memory": f"needs {_gb(c.pred.total_mb)} of {_gb(usable_mb)}",
            "latency": f"{c.pred.latency_ms:.3g} ms", "size": f"{c.pred.size_mb:.1f} MB",
            "quality": f"est. drop {c.quality_drop:.3f}", "runtime": c.target.label}[constraint]


def infeasible_message(spec: ModelSpec, profile: DeviceProfile, cands, hints, pre: dict[str, list[str]], cons) -> str:
    usable = profile.memory_usable_gb * 1000
    head = f"no plan for {spec.name} on {profile.name}"
    if not cands:
        reasons = "; ".join(pre) or "no runtime in the profile"
        return f"{head}: nothing edge-sdk can build runs there ({reasons})"
    # Candidates that break exactly one constraint tell which constraint is the tightest.
    single: dict[str, list] = defaultdict(list)
    for c in cands:
        if len(c.failed) == 1:
            single[c.failed[0]].append(c)
    parts = []
    fits = [c for c in cands if "memory" not in c.failed]
    if not fits:
        m = _best(cands, lambda c: c.pred.total_mb)
        parts.append(f"needs {_gb(m.pred.total_mb)} at best ({m.describe()}); the profile has {_gb(usable)} usable")
        for h in sorted(hints, key=lambda c: c.pred.total_mb):
            if h.pred.total_mb <= usable:
                why = h.failed[0].split(": ", 1)[-1]
                parts.append(f"{h.precision} would need {_gb(h.pred.total_mb)} but {why}")
                break
    elif "quality" in single and (not single.keys() - {"quality"}):
        q = _best(single["quality"], lambda c: c.quality_drop)
        parts.append(f"the tightest constraint is --max-quality-drop {cons.max_quality_drop}: the best plan within "
                     f"the other limits ({q.describe()}, {_gb(q.pred.total_mb)}) has est. cosine drop "
                     f"{q.quality_drop:.3f}; pass --max-quality-drop {q.quality_drop + 0.0005:.3f} to accept it")
    elif single:
        for k, group in single.items():
            if k == "latency":
                c = _best(group, lambda c: c.pred.latency_ms)
                parts.append(f"--latency-ms {cons.latency_ms} is the tightest: fastest otherwise-valid plan is "
                             f"{c.pred.latency_ms:.3g} ms ({c.describe()})")
            elif k == "size":
                c = _best(group, lambda c: c.pred.size_mb)
                parts.append(f"--max-size-mb {cons.max_size_mb} is the tightest: smallest otherwise-valid plan is "
                             f"{c.pred.size_mb:.1f} MB ({c.describe()})")
            elif k == "quality":
                c = _best(group, lambda c: c.quality_drop)
                parts.append(f"--max-quality-drop {cons.max_quality_drop}: the best otherwise-valid plan has est. "
                             f"drop {c.quality_drop:.3f} ({c.describe()})")
            elif k == "memory":
                c = _best(group, lambda c: c.pred.total_mb)
                parts.append(f"memory: the smallest otherwise-valid plan needs {_gb(c.pred.total_mb)} of "
                             f"{_gb(usable)} usable ({c.describe()})")
            elif k == "runtime":
                c = _best(group, lambda c: c.pred.latency_ms)
                parts.append(f"{DECODER_RUNTIME_REASON}; the fastest otherwise-valid plan ({c.describe()}, "
                             f"{c.pred.latency_ms:.3g} ms per token) is not one of them (plan with --runtime onnxruntime)")
        # Name the conflict: the best plan that honours the tightest constraint, and what it breaks instead.
        k = next(iter(single))
        other = _best([c for c in cands if k not in c.failed], lambda c: (len(c.failed), c.quality_drop, c.pred.latency_ms))
        if other is not None and other.failed:
            broken = ", ".join(f"{CONSTRAINT_FLAG[f]} ({_value(f, other, usable)})" for f in other.failed)
            parts.append(f"plans that meet {CONSTRAINT_FLAG[k]} break {broken}, e.g. {other.describe()}")
    else:
        # every candidate breaks two or more constraints: name the conflicting pair
        pairs: dict[tuple, int] = defaultdict(int)
        for c in cands:
            if len(c.failed) >= 2:
                pairs[tuple(sorted(c.failed[:2]))] += 1
        (a, b), _ = max(pairs.items(), key=lambda kv: kv[1])
        parts.append(f"the constraints conflict: every plan that meets {CONSTRAINT_FLAG[a]} breaks "
                     f"{CONSTRAINT_FLAG[b]} and vice versa (e.g. a smaller/faster model needs int8/int4 or pruning, "
                     f"which costs quality)")
        qa = _best([c for c in cands if "quality" not in c.failed], lambda c: (len(c.failed), c.pred.size_mb))
        if qa is not None:
            parts.append(f"best within the quality budget: {qa.describe()} ({qa.pred.latency_ms:.3g} ms, "
                         f"{qa.pred.size_mb:.1f} MB, {_gb(qa.pred.total_mb)})")
    return f"{head}: " + "; ".join(parts)
