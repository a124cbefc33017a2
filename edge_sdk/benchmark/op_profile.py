"""The OpProfile of a BenchResult: the device's per-node summary, mapped to ModelSpec layers (op_layers.py), next to
what the cost model predicts for each layer (planner.layer_times_ms with the bundle plan's ModelSpec and the device
profile of the machine that ran it)."""

from __future__ import annotations

from typing import Any

from ..schemas.bench import LayerTime, OpNodeTime, OpProfile
from ..schemas.modelspec import ModelSpec
from ..schemas.plan import Plan
from .op_layers import OTHER, map_nodes


def predicted_layers(plan: Plan | None, profile_name: str | None, profile=None,
                     calibration_used: str | None = None) -> tuple[dict[str, float] | None, str]:
    """({layer: predicted ms}, basis) — or (None, why not). `profile`: already resolved (and calibrated)."""
    if plan is None or plan.model_spec is None:
        return None, "the bundle's plan carries no model_spec (built by an older edge-sdk): no per-layer prediction"
    if not profile_name:
        return None, "the machine that ran the benchmark names no device profile: no per-layer prediction"
    from ..errors import InputError
    from ..planner import layer_times_ms
    from ..profiles import load_registry

    try:
        prof = profile if profile is not None else load_registry().resolve(profile_name)[0]
    except InputError as exc:
        return None, f"device profile {profile_name!r} not found ({exc}): no per-layer prediction"
    rt = plan.runtime
    runtime = next((r for r in prof.runtimes if (r.name, r.provider, r.unit) == (rt.name, rt.provider, rt.unit)),
                   None) or next((r for r in prof.runtimes if r.name == rt.name), None)
    if runtime is None:
        return None, f"profile {prof.name} lists no {rt.name} runtime: no per-layer prediction"
    ms = layer_times_ms(plan.model_spec, prof, runtime, prof.unit(runtime.unit), plan.precision)
    basis = (f"planner layer_times_ms: profile {prof.name}, {runtime.name}/{runtime.provider} on {runtime.unit}, "
             f"{plan.precision}, the bundle plan's ModelSpec (batch {plan.model_spec.batch}, seq_len "
             f"{plan.model_spec.seq_len}); sum {sum(ms.values()):.3g} ms"
             + (f"; {calibration_used.removeprefix('using ')}" if calibration_used else "; no calibration"))
    return ms, basis


def build_op_profile(raw: dict[str, Any], *, plan: Plan | None, profile_name: str | None,
                     timed_p50_ms: float | None, profile=None, calibration_used: str | None = None) -> OpProfile:
    """OpProfile from the runner's `op_profile` record; `timed_p50_ms`: the timed rounds' p50 of the profiled pair.
    End-to-end is the clean runs timed interleaved with the profiled ones (`clean_p50_ms`), or that p50 from a
    runner that predates them."""
    common = dict(runtime=raw.get("runtime") or "?", inputs=raw.get("inputs"), batch=raw.get("batch"),
                  warmup=raw.get("warmup") or 0, note=raw.get("note"))
    if not raw.get("available"):
        return OpProfile(**common, available=False, unavailable_reason=raw.get("unavailable_reason") or "unknown")
    nodes = raw.get("nodes") or []
    spec: ModelSpec | None = plan.model_spec if plan is not None else None
    layer_of = map_nodes(nodes, spec) if spec is not None else [OTHER] * len(nodes)
    total_us = sum(n.get("per_run_us") or 0.0 for n in nodes) or 1.0
    rows = [OpNodeTime(node=n["node"], op_type=n.get("op_type"), provider=n.get("provider"),
                       per_run_us=n.get("per_run_us") or 0.0, calls_per_run=n.get("calls_per_run") or 0.0,
                       share=round((n.get("per_run_us") or 0.0) / total_us, 5), layer=layer)
            for n, layer in zip(nodes, layer_of)]
    measured: dict[str, float] = {}
    counts: dict[str, int] = {}
    for r in rows:
        measured[r.layer] = measured.get(r.layer, 0.0) + r.per_run_us / 1000.0
        counts[r.layer] = counts.get(r.layer, 0) + 1
    predicted, basis = predicted_layers(plan, profile_name, profile, calibration_used)
    layers: list[LayerTime] = []
    for layer in (spec.layers if spec is not None else []):
        m, p = measured.get(layer.name, 0.0), (predicted or {}).get(layer.name)
        layers.append(LayerTime(layer=layer.name, kind=layer.kind, block=layer.block, nodes=counts.get(layer.name, 0),
                                measured_ms=round(m, 5), predicted_ms=round(p, 5) if p is not None else None,
                                predicted_over_measured=round(p / m, 4) if p is not None and m > 0 else None))
    layers.append(LayerTime(layer=OTHER, nodes=counts.get(OTHER, 0), measured_ms=round(measured.get(OTHER, 0.0), 5)))
    layer_sum = sum(v for k, v in measured.items() if k != OTHER)
    end_to_end_ms = raw.get("clean_p50_ms") or timed_p50_ms
    mapped = sum(1 for r in rows if r.layer != OTHER)
    note = (f"{mapped} of {len(rows)} nodes mapped to ModelSpec layers by their names (unnamed transposes inside a "
            f"layer block by execution order); the rest are '(other)'"
            if spec is not None else "no ModelSpec in the bundle's plan: every node is '(other)'")
    return OpProfile(**common, available=True, iterations=raw.get("profiled_runs") or 0,
                     profiled_p50_ms=raw.get("profiled_p50_ms"),
                     run_ms=round(raw["run_us_mean"] / 1000.0, 5) if raw.get("run_us_mean") else None,
                     node_sum_ms=round(raw["node_us_per_run"] / 1000.0, 5) if raw.get("node_us_per_run") else None,
                     layer_sum_ms=round(layer_sum, 5), other_ms=round(measured.get(OTHER, 0.0), 5),
                     end_to_end_ms=end_to_end_ms, timed_p50_ms=timed_p50_ms,
                     end_to_end_source=("interleaved" if raw.get("clean_p50_ms") else "timed rounds")
                     if end_to_end_ms else None,
                     layer_sum_over_end_to_end=round(layer_sum / end_to_end_ms, 4) if end_to_end_ms else None,
                     nodes=rows, layers=layers, predicted_basis=basis, mapping_note=note,
                     trace_file=raw.get("trace_file"))
