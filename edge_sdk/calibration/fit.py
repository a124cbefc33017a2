"""From microbenchmark timings to the cost model's efficiencies, per runtime × precision, with a held-out error.

The model being fitted is the planner's own roofline (planner/costmodel.py), kernel by kernel:

    t = max(FLOPs / (peak[precision] × compute), bytes / (bandwidth × memory)) + nodes × per_op_overhead

1. per-op overhead: the 1- and 64-Add chains, whose FLOPs and bytes are nil: the slope per node, and the intercept
   (one runtime call's fixed cost, which every isolated kernel pays once: it is taken off the GEMM table's times);
2. bandwidth: the 64 MiB Add (STREAM "add": 2 reads + 1 write) — stored as the device's measured bandwidth;
3. memory: the bandwidth-bound non-GEMM kernels (softmax, LayerNorm, GELU) against that bandwidth; it may exceed 1
   where their working sets stay in cache, which is what small transformer activations do;
4. compute, per precision: the GEMM kernels of that precision (plus QKᵀ for fp32);
5. the per-op overhead the planner charges (per ModelSpec op, times its graph-nodes-per-op factor), per precision:
   solved exactly from the toy encoder (`dispatch` kernels) with the planner's own `predict`, which is linear in it;
The GEMM timings themselves also go into the calibration as a table the planner reads linear-layer times from
(planner/gemm_table.py); the fitted compute efficiency then serves the ops the table does not cover (QKᵀ, PV).
   Steps 1-4 use the 64-Add per-node cost to separate dispatch from compute within single kernels.
6. runtimes that run the exported graph op by op (onnxruntime): compute, memory and per-op overhead, per precision,
   are then refitted so that the planner's own `predict` matches whole exported encoder layers (the `layer` kernels,
   two widths at several batch × sequence points, plus the toy encoder), starting from steps 3-5: a real layer runs
   mask, NaN-guard, transpose and Q/DQ passes and fused bias/LayerNorm kernels that the isolated kernels do not
   (measured on a 2-vCPU Zen 4: steps 1-5 alone left MiniLM/BERT predictions 0.6-1.1× of measured). One layer point
   is held out and its planner error reported with the held-out kernels.
7. runtimes that compile and fuse the whole graph (OpenVINO: GRAPH_COMPILED) time no isolated GEMM: compute, memory,
   per-op overhead and one inference call's fixed cost are fitted the same way to their own IR of 6-layer
   MiniLM-width stacks at several shapes, one such layer alone and a 6-layer stack of the toy encoder, each
   compiled as a bundle compiles (f32, the fixed shape; suite.OPENVINO_LAYER_POINTS), against the device bandwidth
   the first runtime measured. Fitted to one cached layer and its isolated GEMMs instead, MiniLM int8 came out
   0.84× of measured, fp32 0.67×, a 2-layer hidden-128 BERT 1.20× (benchmarks/prediction_accuracy.py).

Steps 3 and 4 are least squares on log(predicted / measured) — relative error, so a 20 µs kernel counts as much as a
20 ms one — solved by a dense 1-D search over the parameter (the max() makes the objective non-smooth, and one
parameter at a time needs nothing cleverer). Kernels marked held out are left out of every fit and only scored.
"""

from __future__ import annotations

import math
from collections import defaultdict

from ..schemas.calibration import FittedEfficiency, Microbenchmark
from ..schemas.profile import ComputeUnit, DeviceProfile, Efficiency, GemmTiming, Runtime

NONGEMM_KINDS = ("softmax", "layernorm", "gelu")
GRID_STEPS = 400


def _grid(lo: float, hi: float) -> list[float]:
    a, b = math.log(lo), math.log(hi)
    return [min(hi, max(lo, math.exp(a + (b - a) * i / (GRID_STEPS - 1)))) for i in range(GRID_STEPS)]


def predict_ms(m: Microbenchmark, *, peak_tops: float, bandwidth_gbps: float, eff: Efficiency,
               run_us: float = 0.0) -> float:
    """One kernel's roofline time, its nodes' dispatch and (`run_us`) the fixed cost of the runtime call."""
    t_c = m.flops / (peak_tops * 1e12 * eff.compute) if m.flops else 0.0
    t_m = m.bytes_moved / (bandwidth_gbps * 1e9 * eff.memory) if m.bytes_moved else 0.0
    return (max(t_c, t_m) + m.nodes * eff.per_op_overhead_us * 1e-6 + run_us * 1e-6) * 1e3


def _best(values: list[float], loss) -> float:
    return min(values, key=loss)


def _log_loss(points: list[Microbenchmark], predict) -> float:
    return sum(math.log(predict(m) / m.median_ms) ** 2 for m in points)


def _peak(unit: ComputeUnit, precision: str) -> float:
    from ..planner.costmodel import gemm_peak_tops

    return gemm_peak_tops(unit, precision)


def gemm_table_ms(m: Microbenchmark, run_overhead_us: float | None) -> float:
    """A table entry: the isolated GEMM's time less one runtime call's fixed cost (never below half of it).

    The GEMM's time is its fastest decile (p10) where that is below its median, like the capability kernels': the
    table is read directly, not fitted, and a 10 µs kernel's median is mostly its neighbours' noise (measured on a
    shared 2-vCPU Zen 5: a 16×128×128 GEMM's median 9.0 µs, p10 6.2 µs, and 6.1 µs alone in a quiet moment),
    which log-interpolation then spreads to the token counts between table rows (tiny-BERT predicted 1.17× of
    measured, 1.06× from p10). Large GEMMs' p10 and median agree within a few %, and the layer refit (step 6 of
    this module's docstring) keeps whole-layer predictions anchored to medians either way."""
    t = min(m.median_ms, m.p10_ms) if m.p10_ms else m.median_ms
    return max(t - (run_overhead_us or 0.0) * 1e-3, 0.5 * t)


def gemm_table(points: list[Microbenchmark], run_overhead_us: float | None) -> list[GemmTiming]:
    """The planner's GEMM table (profile `gemm_ms` rows) from timed `gemm` kernels."""
    return [GemmTiming(m=m.shape["m"], k=m.shape["k"], n=m.shape["n"], ms=gemm_table_ms(m, run_overhead_us))
            for m in points]


def _planner_copy(profile: DeviceProfile, runtime: Runtime, bandwidth: float, tables: dict,
                  run_overhead_us: float = 0.0):
    """A copy of the profile as a calibration will leave it (bandwidth, GEMM tables), to solve against `predict`."""
    prof = profile.model_copy(deep=True)
    u = prof.unit(runtime.unit)
    u.memory_bandwidth_gbps = bandwidth
    rt = next(r for r in prof.runtimes if (r.name, r.provider, r.unit) == (runtime.name, runtime.provider,
                                                                           runtime.unit))
    for prec, pts in tables.items():
        rt.gemm_ms[prec] = gemm_table(pts, run_overhead_us)
    return prof, rt, u


def _encoder_ms(spec, planner, precision: str, eff: Efficiency) -> float:
    """What the planner predicts for a small encoder (a `dispatch` or `layer` kernel) at these efficiencies."""
    from ..planner.costmodel import block_costs, predict

    from ..planner.space import RuntimeUnit, float_kinds

    prof, rt, u = planner
    rt.efficiency[precision] = eff
    # the suite's static encoders keep in float what the planner's recipe keeps in float
    bc = block_costs(spec, prof, u, precision, runtime=rt, float_kinds=float_kinds(RuntimeUnit(rt, u), precision))
    return predict(spec, prof, rt, u, precision, bc).latency_ms


def _solve_overhead(m: Microbenchmark, spec, planner, compute: float, memory: float) -> float | None:
    """per_op_overhead_us making the planner's toy-encoder prediction equal the measurement (predict is linear in
    it)."""
    at = lambda ov: _encoder_ms(spec, planner, m.precision, Efficiency(compute=compute, memory=memory,  # noqa: E731
                                                                       per_op_overhead_us=ov))
    p0, p1 = at(0.0), at(1.0)
    return None if p1 <= p0 else max(0.0, (m.median_ms - p0) / (p1 - p0))


#: Precisions whose GEMM timings become the planner's table but fit no efficiency: int4 weight-only is what decoders
#: run, and a generated token streams the weights from DRAM through GEMVs whose per-node cost grows with their size
#: (measured on 2 Zen 5 vCPUs: a 128-wide toy decoder 1 µs per graph node, SmolLM-135M's token 3.5 ms for 84 MB of
#: weights, 24 GB/s against the 64 MiB Add's 68) -- hot-cache GEMMs and a 64-Add chain would make it 2x too fast.
TABLE_ONLY = frozenset({"int4_weight_only"})


def _table_only(prec: str, pts: list[Microbenchmark], profile: DeviceProfile, unit: ComputeUnit, runtime: Runtime,
                run_us: float | None) -> FittedEfficiency:
    """A TABLE_ONLY precision's entry: the profile's efficiency kept, the table's held-out error (each held-out GEMM
    read off the table of the others, as the planner reads it)."""
    from ..planner.costmodel import efficiency
    from ..planner.gemm_table import measured_gemm_s

    train = [m for m in pts if not m.held_out]
    table = gemm_table(train, run_us)
    errs = sorted(abs(measured_gemm_s(table, m.shape["m"], m.shape["k"], m.shape["n"]) * 1e3
                      / gemm_table_ms(m, run_us) - 1) for m in pts if m.held_out)
    kept = efficiency(profile, unit, runtime, prec)
    return FittedEfficiency(unit=unit.name, runtime=runtime.name, provider=runtime.provider, precision=prec,
                            efficiency=kept.model_copy(), points=len(train), held_out=len(errs),
                            fit_error_median=round(errs[len(errs) // 2], 4) if errs else None,
                            fit_error_max=round(errs[-1], 4) if errs else None,
                            run_overhead_us=None if run_us is None else round(run_us, 3), table_only=True,
                            note=f"GEMM table only ({len(pts)} timings; held-out error: each held-out GEMM read off "
                                 f"the table of the others); efficiencies kept from the profile, not fitted: a "
                                 f"generated token streams its weights from DRAM, which hot-cache GEMMs do not show")


#: Runtimes that compile and fuse the whole graph: their compute efficiency is fitted to the `layer` kernel (a real
#: encoder layer), not to isolated GEMMs, and the planner gets no per-GEMM table for them (store.apply_calibration).
GRAPH_COMPILED = {"openvino"}


def _solve_compute(m: Microbenchmark, spec, planner, memory: float, overhead_us: float) -> float:
    """The compute efficiency making the planner's prediction of the `layer` encoder equal its measurement."""
    def loss(c: float) -> float:
        eff = Efficiency(compute=c, memory=memory, per_op_overhead_us=overhead_us)
        return abs(math.log(_encoder_ms(spec, planner, m.precision, eff) / m.median_ms))

    return _best(_grid(0.005, 4.0), loss)


def _fit_layers(points: list[Microbenchmark], specs: dict, planner, precision: str,
                start: tuple[float, float, float], per_run: bool = False) -> tuple[float, float, float, float]:
    """(compute, memory, per_op_overhead_us, per_run_overhead_us) making the planner's predictions of whole exported
    layers (and the toy encoder) match their timings. Each parameter carries what isolated kernels cannot show:
    compute the attention MatMuls at their real shapes, memory the mask/softmax/NaN-guard and transpose passes and
    the fused bias/residual/LayerNorm kernels, overhead the real graph's shape arithmetic per op. `per_run` (graph-
    compiling runtimes) also fits one inference call's fixed cost: OpenVINO fuses chains of small ops into one
    kernel, so its cost is mostly per call, not per op (measured on 2 Zen 5 vCPUs: the toy encoder, 8 tokens, 0.18
    ms; a 2-layer hidden-128 BERT at 64 tokens, 0.19 ms — charged per op, the second came out 1.76× of measured).

    `predict` is linear in both overheads, so for every (compute, memory) they are solved by least squares on the
    relative error (non-negative); (compute, memory) — which trade against each other along a valley with kinks (the
    roofline's max) — are searched on a log grid, then on finer grids around the best point. The loss is the sum of
    squared log(predicted / measured). `start` (the kernel-level fit) is one of the candidates."""
    bounds = ((0.005, 4.0), (0.05, 8.0))
    ys = [p.median_ms for p in points]

    def at(c: float, m: float, ov: float, run: float = 0.0) -> list[float]:
        eff = Efficiency(compute=c, memory=m, per_op_overhead_us=ov, per_run_overhead_us=run)
        return [_encoder_ms(specs[p.name], planner, precision, eff) for p in points]

    # Relative change of each prediction per µs of per-op / per-call overhead. `predict` adds both overheads to the
    # roofline terms (op counts times the per-op cost, plus the per-call cost), so the slopes do not depend on
    # (compute, memory): found once here rather than at each of the ~2,000 grid points, which made the fit 2-3×
    # slower (it was most of `calibrate --local`'s time).
    base0 = at(*start[:2], 0.0)
    k_op = [(b1 - b0) / y for b0, b1, y in zip(base0, at(*start[:2], 1.0), ys)]
    k_run = [(b1 - b0) / y for b0, b1, y in zip(base0, at(*start[:2], 0.0, 1.0), ys)] if per_run \
        else [0.0] * len(ys)

    def solve(c: float, m: float) -> tuple[float, float, float]:
        base = at(c, m, 0.0)
        rs = [1.0 - b0 / y for b0, y in zip(base, ys)]
        ov, run = _nonneg_lstsq(k_op, k_run, rs, (200.0, 5000.0))
        if not any(k_op) and not any(k_run):
            ov = start[2]
        pred = [b0 + (ov * a + run * b) * y for b0, a, b, y in zip(base, k_op, k_run, ys)]
        loss = sum(math.log(max(p, 1e-12) / y) ** 2 for p, y in zip(pred, ys))
        return loss, ov, run

    def grid(lo_hi: tuple[tuple[float, float], ...], n: int) -> list[tuple[float, float]]:
        axes = [[lo * (hi / lo) ** (j / (n - 1)) for j in range(n)] for lo, hi in lo_hi]
        return [(c, m) for c in axes[0] for m in axes[1]]

    cands = grid(bounds, LAYER_FIT_GRID) + [(min(max(start[0], 0.005), 4.0), min(max(start[1], 0.05), 8.0))]
    best = min(cands, key=lambda cm: solve(*cm)[0])
    step = math.log(bounds[0][1] / bounds[0][0]) / (LAYER_FIT_GRID - 1), \
        math.log(bounds[1][1] / bounds[1][0]) / (LAYER_FIT_GRID - 1)
    for _ in range(LAYER_FIT_REFINE):  # finer grids around the best point, one grid step either side
        local = tuple((max(lo, v * math.exp(-s)), min(hi, v * math.exp(s)))
                      for v, s, (lo, hi) in zip(best, step, bounds))
        best = min(grid(local, 9) + [best], key=lambda cm: solve(*cm)[0])
        step = step[0] / 4, step[1] / 4
    _, ov, run = solve(*best)
    return best[0], best[1], ov, run


def _nonneg_lstsq(k1: list[float], k2: list[float], rs: list[float],
                  caps: tuple[float, float]) -> tuple[float, float]:
    """(a, b) ≥ 0 minimising Σ (a·k1 + b·k2 − rs)², each at most its cap: the unconstrained 2×2 solution when it is
    feasible, else the best one-variable solution on an edge (an all-zero k2 gives b = 0)."""
    def one(col: list[float], cap: float) -> float:
        den = sum(k * k for k in col)
        return min(cap, max(0.0, sum(k * r for k, r in zip(col, rs)) / den)) if den > 0 else 0.0

    def sse(a: float, b: float) -> float:
        return sum((a * x + b * y - r) ** 2 for x, y, r in zip(k1, k2, rs))

    s11, s22, s12 = sum(x * x for x in k1), sum(x * x for x in k2), sum(x * y for x, y in zip(k1, k2))
    r1, r2 = sum(x * r for x, r in zip(k1, rs)), sum(x * r for x, r in zip(k2, rs))
    det = s11 * s22 - s12 * s12
    cands = [(one(k1, caps[0]), 0.0), (0.0, one(k2, caps[1]))]
    if det > 1e-18 * max(s11 * s22, 1e-300):
        a, b = (r1 * s22 - r2 * s12) / det, (r2 * s11 - r1 * s12) / det
        if 0 <= a <= caps[0] and 0 <= b <= caps[1]:
            cands.append((a, b))
    return min(cands, key=lambda ab: sse(*ab))


LAYER_FIT_GRID = 40
LAYER_FIT_REFINE = 4


def fit(measurements: list[Microbenchmark], profile: DeviceProfile, runtime: Runtime,
        dispatch_specs: dict | None = None,
        device_bandwidth_gbps: float | None = None) -> tuple[list[FittedEfficiency], float | None, list[str]]:
    """Fitted efficiencies per precision for one runtime, the measured bandwidth (GB/s) and notes.
    `dispatch_specs`: kernel name → ModelSpec of the toy encoders (`dispatch` kernels). `device_bandwidth_gbps`:
    the device's bandwidth as an earlier runtime measured it. The calibration stores one bandwidth for the device,
    so every runtime is fitted against it: OpenVINO's own 64 MiB Add measured 7.5 GB/s against onnxruntime's 48
    (its Python call copies the inputs and allocates the output each run), and memory efficiencies fitted at 7.5
    made every memory-bound op 6× too fast once the planner applied them at 48."""
    unit = profile.unit(runtime.unit)
    notes: list[str] = []
    mine = [m for m in measurements if (m.runtime, m.provider) == (runtime.name, runtime.provider)]
    by_kind: dict[str, list[Microbenchmark]] = defaultdict(list)
    for m in mine:
        by_kind[m.kind].append(m)
    overhead = [m for m in by_kind["overhead"]]
    # capability kernels (dispatch cost, bandwidth) use their fastest decile: a loaded, shared machine only ever
    # adds time to them, and the fit should learn what the device can do, not what a neighbour took from it
    ov_us = min((m.p10_ms or m.median_ms) * 1e3 / m.nodes for m in overhead) if overhead else \
        (unit.efficiency.per_op_overhead_us if unit.efficiency else 5.0)
    run_us = None
    short = min(overhead, key=lambda m: m.nodes, default=None)
    long = max(overhead, key=lambda m: m.nodes, default=None)
    # slope: per node; intercept: one runtime call (op-by-op runtimes; a graph-compiling runtime keeps the 64-Add
    # chain's per-node average, which its layer fit was made with)
    if short is not None and long.nodes > short.nodes and runtime.name not in GRAPH_COMPILED:
        t1, t2 = ((m.p10_ms or m.median_ms) * 1e3 for m in (short, long))
        ov_us = max((t2 - t1) / (long.nodes - short.nodes), 0.0)
        run_us = max(t1 - short.nodes * ov_us, 0.0)
    if not overhead:
        notes.append("no overhead kernel measured: per-op overhead kept from the profile")
    bw = None
    for m in by_kind["bandwidth"]:
        t = (m.p10_ms or m.median_ms) * 1e-3 - m.nodes * ov_us * 1e-6 - (run_us or 0.0) * 1e-6
        if t > 0:
            bw = max(bw or 0.0, m.bytes_moved / t / 1e9)
    bandwidth = device_bandwidth_gbps or bw or (unit.memory_bandwidth_gbps or profile.memory_bandwidth_gbps)
    if device_bandwidth_gbps:
        if bw is not None:
            notes.append(f"{runtime.name}: fitted against the device's bandwidth {device_bandwidth_gbps:.1f} GB/s; its "
                         f"own 64 MiB Add ran at {bw:.1f} GB/s")
        bw = None
    elif bw is None:
        notes.append("no bandwidth kernel measured: memory bandwidth kept from the profile")

    nongemm = [m for k in NONGEMM_KINDS for m in by_kind[k]]
    train_ng = [m for m in nongemm if not m.held_out]

    def ng_pred(mem: float):
        e = Efficiency(compute=1.0, memory=mem, per_op_overhead_us=ov_us)
        return lambda m: predict_ms(m, peak_tops=1.0, bandwidth_gbps=bandwidth, eff=e, run_us=run_us or 0.0)

    memory = _best(_grid(0.05, 8.0), lambda x: _log_loss(train_ng, ng_pred(x))) if train_ng else 1.0
    if not train_ng:
        notes.append("no non-GEMM kernel measured: memory efficiency 1.0 against the measured bandwidth")

    fits: list[FittedEfficiency] = []
    gemm_by_prec: dict[str, list[Microbenchmark]] = defaultdict(list)
    for m in by_kind["gemm"]:
        gemm_by_prec[m.precision].append(m)
    graph = runtime.name in GRAPH_COMPILED
    planner = _planner_copy(profile, runtime, bandwidth, {} if graph else {p: list(v) for p, v in gemm_by_prec.items()},
                            run_us or 0.0)
    gemm_by_prec["fp32"] += by_kind["attention"]
    specs = dispatch_specs or {}
    # a graph-compiling runtime is fitted to its layer stacks alone (calibration/run.py times it no isolated GEMM)
    fitted_layers = {d.precision for d in by_kind["layer"] if d.name in specs and not d.held_out} if graph else set()
    for prec in sorted(set(gemm_by_prec) | fitted_layers):
        pts = gemm_by_prec.get(prec, [])
        train = [m for m in pts if not m.held_out]
        if not train and prec not in fitted_layers:
            continue
        if prec in TABLE_ONLY:
            fits.append(_table_only(prec, pts, profile, unit, runtime, run_us))
            continue
        peak = _peak(unit, prec)

        def g_pred(c: float, peak=peak):
            e = Efficiency(compute=c, memory=memory, per_op_overhead_us=ov_us)
            return lambda m: predict_ms(m, peak_tops=peak, bandwidth_gbps=bandwidth, eff=e, run_us=run_us or 0.0)

        start = unit.efficiency.compute if unit.efficiency else 1.0  # the layer fit's grid searches from there
        compute = _best(_grid(0.005, 4.0), lambda c: _log_loss(train, g_pred(c))) if train else start
        planner_ov, how = ov_us, "per-op overhead from the 64-Add chain (no toy encoder)"
        toy = next((d for d in by_kind["dispatch"] if d.precision == prec and d.name in specs), None)
        layer = next((d for d in by_kind["layer"] if d.precision == prec and d.name in specs), None) if graph else None
        for _ in range(2 if layer is not None else 1):  # overhead and compute depend on each other: alternate
            if toy is not None:
                solved = _solve_overhead(toy, specs[toy.name], planner, compute, memory)
                if solved is not None:
                    planner_ov, how = solved, f"per-op overhead from the toy encoder ({toy.median_ms:.3g} ms)"
            if layer is not None:
                compute = _solve_compute(layer, specs[layer.name], planner, memory, planner_ov)
        if layer is not None:
            how += (f"; compute from one MiniLM-width encoder layer ({layer.median_ms:.3g} ms: {runtime.name} fuses the "
                    f"graph, so isolated GEMMs understate it)")
        k_eff = Efficiency(compute=compute, memory=memory, per_op_overhead_us=ov_us)  # per kernel node
        mem_p, per_run_us = memory, 0.0
        layers = [d for d in by_kind["layer"] if d.precision == prec and d.name in specs]
        held_layers = [d for d in layers if d.held_out]
        train_l: list[Microbenchmark] = []
        if sum(not d.held_out for d in layers) > (1 if graph else 0):
            train_l = [d for d in layers if not d.held_out] + ([toy] if toy is not None else [])
            compute, mem_p, planner_ov, per_run_us = _fit_layers(train_l, specs, planner, prec,
                                                                 (compute, memory, planner_ov), per_run=graph)
            what = ("(depth, batch, seq) points: a fused graph's GEMMs, attention and weight traffic as they run"
                    if graph else "(width, batch, seq) points (linear layers use the measured GEMM table)")
            how = (f"compute, memory and per-op overhead{' and per-call cost' if graph else ''} from "
                   f"{len(train_l) - (toy is not None)} exported encoder {'stacks' if graph else 'layers'}"
                   f"{' and the toy encoder' if toy is not None else ''} at {len(train_l) - (toy is not None)} {what}"
                   + (f"; {per_run_us:.0f} µs per inference call" if graph else ""))
        eff = Efficiency(compute=round(compute, 4), memory=round(mem_p, 4), per_op_overhead_us=round(planner_ov, 4),
                         per_run_overhead_us=round(per_run_us, 3))
        held = [m for m in pts if m.held_out] + ([m for m in nongemm if m.held_out] if prec == "fp32" else [])
        pred = lambda m, eff=k_eff, peak=peak: predict_ms(m, peak_tops=peak if m.flops else 1.0,  # noqa: E731
                                                          bandwidth_gbps=bandwidth, eff=eff, run_us=run_us or 0.0)
        errs = [abs(pred(m) / m.median_ms - 1) for m in held]
        layer_errs = [abs(_encoder_ms(specs[d.name], planner, prec, eff) / d.median_ms - 1) for d in held_layers]
        if layer_errs:
            how += f"; held-out whole layers predicted within {max(layer_errs):.0%}"
        errs = sorted(errs + layer_errs)
        held = held + held_layers
        med, mx = (errs[len(errs) // 2], errs[-1]) if errs else (None, None)
        if compute > 1.0:
            notes.append(f"{runtime.name} {prec}: {'its layer stacks' if graph else 'GEMMs'} ran at {compute:.2f}× the "
                         f"profile's peak ({peak:g} TOPS): "
                         f"its clock or ops/cycle is too low for this machine (a VM often hides the boost clock)")
        fits.append(FittedEfficiency(unit=unit.name, runtime=runtime.name, provider=runtime.provider,
                                     precision=prec, efficiency=eff, points=len(train) + len(train_l),
                                     held_out=len(held),
                                     fit_error_median=None if med is None else round(med, 4),
                                     fit_error_max=None if mx is None else round(mx, 4),
                                     run_overhead_us=None if run_us is None or graph else round(run_us, 3),
                                     note=f"peak {peak:g} TOPS, bandwidth {bandwidth:.1f} GB/s; {how}; held-out "
                                          f"error: kernel roofline at the kernel-level fit, whole layers through "
                                          f"the planner"))
    return fits, (round(bw, 2) if bw else None), notes
