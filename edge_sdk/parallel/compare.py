"""How do the ranks' measurements add up per stage, and how do they compare with what the plan predicted?

Per stage: the slowest tensor-parallel rank bounds the stage, replicas run side by side (averaged). Times are
medians over the timed iterations. The plan's predictions are for its device and runtime; when those are not what
ran, the shares of the stage total (not the absolute milliseconds) are the comparable numbers, and a note says so.
"""

from __future__ import annotations

import statistics

from ..schemas.parallel import CommReport, OutputCheck, ParallelRunResult, RankReport, RunSpec, StageReport


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def summarize(plan, spec: RunSpec, reports: dict[int, dict], *, model_name: str, family: str, output_name: str,
              nnodes: int, wall_s: float, output: OutputCheck | None, notes: list[str]) -> ParallelRunResult:
    ranks = [RankReport.model_validate(reports[r]) for r in sorted(reports)]
    planned = {(s.first_layer, s.last_layer): s.predicted_ms for s in plan.layout.stages}
    stages: list[StageReport] = []
    measured = []
    for i, (a, b) in enumerate(spec.stages):
        mine = [r for r in ranks if r.pp == i]
        m = _critical_path(mine, spec.pp, lambda r: _med(r.compute_ms))
        cpu = _critical_path(mine, spec.pp, lambda r: _med(r.compute_cpu_ms))
        measured.append(m)
        pred = planned.get((a, b)) if plan.layout.stages else (plan.predicted.latency_ms if spec.pp == 1 else None)
        stages.append(StageReport(index=i, first_layer=a, last_layer=b, ranks=[r.rank for r in mine],
                                  predicted_ms=pred, measured_ms=round(m, 4), measured_cpu_ms=round(cpu, 4),
                                  measured_share=0.0))
    tot_m = sum(measured) or 1.0
    preds = [s.predicted_ms for s in stages]
    tot_p = sum(preds) if all(p is not None for p in preds) else None
    for s, m in zip(stages, measured):
        s.measured_share = round(m / tot_m, 4)
        if tot_p:
            s.predicted_share = round((s.predicted_ms or 0.0) / tot_p, 4)

    tp_ms = _critical_path(ranks, spec.pp, lambda r: _med(r.tp_allreduce_ms) if r.tp_allreduce_ms else None)
    tp_iso = _critical_path(ranks, spec.pp, lambda r: r.tp_allreduce_isolated_ms)
    handoffs = []
    for i in range(spec.pp - 1):
        hs = [r.handoff_ms for r in ranks if r.pp == i and r.handoff_ms is not None]
        if hs:
            handoffs.append(round(statistics.fmean(hs), 4))
    gathers = [r.gather_ms for r in ranks if r.gather_ms is not None]
    comm = CommReport(predicted_ms=plan.layout.communication_ms, measured_ms=round(tp_iso + sum(handoffs), 4),
                      tp_allreduce_ms=round(tp_ms, 4), tp_allreduce_isolated_ms=round(tp_iso, 4),
                      pp_handoff_ms=handoffs,
                      dp_gather_ms=round(max(gathers), 4) if gathers else 0.0)
    iters = min((len(r.step_ms) for r in ranks), default=0)
    lat = _med([max(r.step_ms[k] for r in ranks) for k in range(iters)]) if iters else 0.0
    return ParallelRunResult(
        model=spec.model, model_name=model_name, family=family, output_name=output_name, backend=spec.backend,
        world_size=spec.world_size, nnodes=nnodes, dp=spec.dp, tp=spec.tp, pp=spec.pp, batch=spec.batch,
        seq_len=spec.seq_len, microbatches=spec.microbatches, iterations=spec.iterations,
        predicted_latency_ms=plan.predicted.latency_ms, predicted_device_mb=plan.predicted.memory_mb.total_mb,
        measured_latency_ms=round(lat, 4), stages=stages,
        ranks=ranks, communication=comm, output=output, notes=notes, wall_s=round(wall_s, 2))


def _critical_path(ranks, pp: int, value) -> float:
    """Sum over stages (they run one after another) of the slowest tensor-parallel rank, averaged over replicas."""
    total = 0.0
    for i in range(pp):
        per_rep: dict[int, float] = {}
        for r in ranks:
            v = value(r) if r.pp == i else None
            if v is not None:
                per_rep[r.dp] = max(per_rep.get(r.dp, 0.0), v)
        total += statistics.fmean(per_rep.values()) if per_rep else 0.0
    return total


def comparability_notes(plan, spec: RunSpec, family: str, device_kind: str) -> list[str]:
    """Say when the plan's predictions are for something other than what ran."""
    notes = []
    if (plan.batch, plan.seq_len) != (spec.batch, spec.seq_len):
        notes.append(f"the plan predicts batch {plan.batch} × {plan.seq_len} tokens; this run used batch "
                     f"{spec.batch} × {spec.seq_len}")
    if family == "decoder" and "generated token" in plan.rationale.get("workload", "one generated token"):
        notes.append("the plan costs a decoder per generated token (decode); this run measures one forward over "
                     "the whole sequence (prefill): compare stage shares, not milliseconds")
    ran = f"pytorch/{device_kind}"
    if f"{plan.runtime.name}/{plan.runtime.provider}" != ran or plan.device != "host" and device_kind == "cpu":
        notes.append(f"predictions are for {plan.device} with {plan.runtime.name}/{plan.runtime.provider} "
                     f"{plan.precision}; measured here with PyTorch fp32 on {device_kind} ({spec.backend}): compare "
                     f"stage shares, not milliseconds")
    elif plan.precision != "fp32":
        notes.append(f"the plan's precision is {plan.precision}; the parallel runner computes in fp32")
    return notes
