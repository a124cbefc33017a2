"""Fitting the cost model to published whole-model latencies, for devices we do not own.

A profile's `reference_results` carry published latencies (MLPerf Inference, Qualcomm AI Hub, vendor pages), each
with its model config, shape, precision, runtime and source URL. For every runtime (on its unit) that has results
*not* reserved for validation, this fits that runtime's `Efficiency` per precision by least squares in log space (the
error of a 2× miss counts the same as a 0.5× miss):

- compute fraction always; per-op overhead too from FIT_OVERHEAD_MIN_POINTS results (the ModelSpecs differ enough in
  op count, MobileBERT's 730 ops against DistilBERT's 78, to tell the two apart); memory fraction only from
  FIT_MEMORY_MIN_POINTS. What is not fitted keeps the profile's value, and the calibration says so.
- every efficiency stays in (0, 1]; overhead in [0, MAX_OVERHEAD_US].
- each fitted result gets a leave-one-out prediction (a fit on the others); reserved results are only predicted, with
  the fitted efficiencies, never fitted on (`reserved_for_validation: true`).

One runtime on one unit is fitted as a whole: the compute fraction is fitted per precision (each precision runs its
own kernels against its own peak), but the per-op overhead and the memory fraction are shared by all its precisions,
because they are properties of the runtime and the memory system, not of the arithmetic: a kernel launch or a graph
node dispatch costs the same whether the GEMM inside is int8 or bf16, and DRAM streams bytes at one rate. So the
point counts for fitting them (FIT_OVERHEAD_MIN_POINTS, FIT_MEMORY_MIN_POINTS) count the runtime's results over all
precisions: OpenVINO's int8 BERT-base/BERT-large pair (149 vs 293 ops) pins the overhead its bf16 results pay too.

A precision with no results that may be fitted takes the compute fraction of the runtime's best-covered fitted
precision (the most results): the profile itself has one efficiency per unit for every precision, and a fraction of
peak measured through the same runtime on the same unit is a better estimate than that unfitted guess. It is named in
the notes and saved as a fit with 0 points, so `plan` uses what the reserved predictions used. A runtime with only
reserved results stays unfitted (and is named in the notes), unless the profile declares a `calibration_sibling`: a
profile whose accelerator has the same architecture (Jetson Orin NX, Orin Nano and DRIVE AGX Orin carry the Orin
SoC's Ampere GPU, compute capability 8.7, as Jetson AGX Orin does; the citation says so). Such a runtime then takes
the efficiencies fitted on the sibling for the same runtime and precision (compute and memory are fractions of each
device's own peaks, so they carry over between modules of one architecture that differ in SM count, clock and
memory bus), named in the notes and saved as a fit with 0 points. The sibling's fit never uses its own reserved
results, and nothing reserved here is fitted on. A profile with a sibling but no reference results of its own gets
the sibling's fits for every runtime they share. The result is a `Calibration(source="published")`; the CLI saves
it, and `plan` uses it for the profile when nothing measured applies.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..errors import InputError
from ..planner import costmodel as cm
from ..schemas.calibration import Calibration, FittedEfficiency, PublishedCheck
from ..schemas.modelspec import ModelSpec
from ..schemas.profile import DeviceProfile, Efficiency, ReferenceResult, Runtime

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "examples" / "configs"
FIT_OVERHEAD_MIN_POINTS = 3
FIT_MEMORY_MIN_POINTS = 6
MAX_OVERHEAD_US = 200.0
_C_GRID = np.geomspace(0.01, 1.0, 48)     # compute fractions tabulated through the cost model
_M_GRID = np.geomspace(0.05, 1.0, 12)     # memory fractions (only when fitted)
_C_FINE = np.geomspace(0.01, 1.0, 600)    # searched by interpolating the table
_O_FINE = np.concatenate([[0.0], np.geomspace(0.05, MAX_OVERHEAD_US, 300)])

Progress = Callable[[int, int, str], None]


def resolve_model(name: str, registry: str | Path | Mapping[str, str | Path] | None = None) -> Path:
    """A reference result's model: a name in `registry` (a dict name → config path, or a directory of
    `<name>.json`; default examples/configs) or a path to a transformers config.json."""
    if isinstance(registry, Mapping) and name in registry:
        return Path(registry[name])
    directory = Path(registry) if isinstance(registry, (str, Path)) else CONFIGS_DIR
    for cand in (directory / f"{name}.json", Path(name)):
        if cand.is_file():
            return cand
    raise InputError(f"reference result model '{name}': no {directory / (name + '.json')} and no such file "
                     f"(expected a config name in {directory} or a path to a config.json)")


class _Point:
    """One reference result, its ModelSpec and runtime, and its cost-model latency tabulated over efficiencies."""

    def __init__(self, ref: ReferenceResult, spec: ModelSpec, profile: DeviceProfile, rt: Runtime):
        self.ref, self.spec, self.profile, self.rt = ref, spec, profile, rt
        self.unit = profile.unit(rt.unit)
        self.published_ms = ref.published_latency_ms
        self.table: np.ndarray | None = None  # [m index, c index] → latency without overhead, ms
        self.overhead_per_us = 0.0            # ms of overhead per µs of per_op_overhead_us

    def predict_ms(self, eff: Efficiency) -> float:
        p = self.profile.model_copy(deep=True)
        rt = next(r for r in p.runtimes if (r.name, r.provider, r.unit) == (self.rt.name, self.rt.provider,
                                                                               self.rt.unit))
        rt.efficiency[self.ref.precision] = eff
        unit = p.unit(rt.unit)
        bc = cm.block_costs(self.spec, p, unit, self.ref.precision, runtime=rt, edge_sdk_ir=False)  # others' graphs
        return cm.predict(self.spec, p, rt, unit, self.ref.precision, bc).latency_ms

    def tabulate(self, m_grid: np.ndarray) -> None:
        """Latency is (roofline part depending on compute and memory fractions) + overhead, exactly linear in
        per_op_overhead_us; tabulate the roofline part over the grids once, so fitting is array arithmetic."""
        self.table = np.array([[self.predict_ms(Efficiency(compute=float(c), memory=float(m), per_op_overhead_us=0))
                                for c in _C_GRID] for m in m_grid])
        self.overhead_per_us = self.predict_ms(Efficiency(compute=1.0, memory=1.0, per_op_overhead_us=1.0)) - \
            self.predict_ms(Efficiency(compute=1.0, memory=1.0, per_op_overhead_us=0.0))

    def roofline_ms(self, mi: int, c: np.ndarray) -> np.ndarray:
        assert self.table is not None
        return np.exp(np.interp(np.log(c), np.log(_C_GRID), np.log(self.table[mi])))


def _fit(by_precision: dict[str, list[_Point]], m_grids: dict[str, np.ndarray], fit_overhead: bool,
         overhead_us: dict[str, float]) -> tuple[dict[str, float], int, dict[str, float]]:
    """({precision: compute}, memory grid index, {precision: overhead µs}) minimising Σ (log predicted − log
    published)² over all points of one runtime: compute per precision; memory and (when fitted) overhead shared
    (see the module docstring). What is not fitted is each precision's own profile value (a one-entry grid; the
    memory grids are then one entry each). For fixed memory and overhead the precisions' compute fractions are
    independent, so each is the argmin of its own loss."""
    n_o = len(_O_FINE) if fit_overhead else 1
    n_m = len(next(iter(m_grids.values())))
    best: tuple[float, dict[str, float], int, dict[str, float]] = (math.inf, {}, 0, dict(overhead_us))
    for mi in range(n_m):
        total = np.zeros(n_o)
        c_idx: dict[str, np.ndarray] = {}
        for prec, points in by_precision.items():
            o_vals = _O_FINE if fit_overhead else np.array([overhead_us[prec]])
            target = np.log([p.published_ms for p in points])[:, None, None]
            roof = np.stack([p.roofline_ms(mi, _C_FINE) for p in points])[:, :, None]    # point × c × 1
            ovh = np.array([p.overhead_per_us for p in points])[:, None, None] * o_vals[None, None, :]
            loss = ((np.log(roof + ovh) - target) ** 2).sum(axis=0)                       # c × o
            c_idx[prec] = np.argmin(loss, axis=0)
            total += loss[c_idx[prec], np.arange(n_o)]
        oi = int(np.argmin(total))
        if total[oi] < best[0]:
            best = (float(total[oi]), {prec: float(_C_FINE[ci[oi]]) for prec, ci in c_idx.items()}, mi,
                    {prec: float(_O_FINE[oi]) if fit_overhead else overhead_us[prec] for prec in by_precision})
    return best[1], best[2], best[3]


def _donor(by_precision: dict[str, list[_Point]]) -> str:
    """The fitted precision an unfitted one borrows its compute fraction from: the one with the most results."""
    return max(by_precision, key=lambda prec: len(by_precision[prec]))


def _by_precision(points: list[_Point]) -> dict[str, list[_Point]]:
    out: dict[str, list[_Point]] = {}
    for p in points:
        out.setdefault(p.ref.precision, []).append(p)
    return out


def _solve(points: list[_Point], precisions: list[str], m_grids: dict[str, np.ndarray],
           starts: dict[str, Efficiency], fit_memory: bool) -> dict[str, Efficiency]:
    """Efficiencies for every precision of one runtime from a fit on `points`: fitted compute per precision (the
    donor's for a precision without points), shared memory/overhead where fitted, else the profile's values."""
    bp = _by_precision(points)
    fit_overhead = len(points) >= FIT_OVERHEAD_MIN_POINTS
    c, mi, o = _fit(bp, {k: m_grids[k] for k in bp}, fit_overhead, {k: starts[k].per_op_overhead_us for k in bp})
    donor = _donor(bp)
    out = {}
    for prec in precisions:
        mem = float(m_grids[prec][mi]) if fit_memory or prec in bp else starts[prec].memory
        ovh = o[prec] if prec in bp else (o[donor] if fit_overhead else starts[prec].per_op_overhead_us)
        out[prec] = _eff(c.get(prec, c[donor]), mem, ovh)
    return out


def _eff(c: float, memory: float, overhead_us: float) -> Efficiency:
    return Efficiency(compute=min(max(c, 1e-3), 1.0), memory=memory, per_op_overhead_us=round(overhead_us, 3))


def _sibling_fits(profile: DeviceProfile, siblings: Mapping[str, DeviceProfile] | None,
                  registry: str | Path | Mapping[str, str | Path] | None) -> dict[tuple, FittedEfficiency]:
    """{(runtime, provider, precision): fit} of `profile.calibration_sibling`'s own published calibration (its
    siblings are not followed: one hop, so a transfer is always from results on the named device)."""
    name = profile.calibration_sibling
    if name is None:
        return {}
    if siblings is not None and name in siblings:
        sib = siblings[name]
    else:
        from ..profiles.loader import load_profile_file, shipped_profiles_dir

        path = shipped_profiles_dir() / f"{name}.yaml"
        if not path.is_file():
            raise InputError(f"profile {profile.name}: calibration_sibling '{name}' is not a shipped profile "
                             f"(expected {path})")
        sib = load_profile_file(path)
    if not sib.reference_results:
        return {}
    cal = calibrate_from_published(sib.model_copy(update={"calibration_sibling": None}), registry=registry)
    kinds = {u.name: u.kind for u in sib.compute_units}
    mine = {(r.name, r.provider): profile.unit(r.unit).kind for r in profile.runtimes}
    return {(f.runtime, f.provider, f.precision): f for f in cal.fits
            if mine.get((f.runtime, f.provider)) == kinds.get(f.unit)}


def _sibling_fit(unit: str, runtime: str, provider: str, precision: str, sibling: str,
                 fit: FittedEfficiency) -> FittedEfficiency:
    """The sibling's `fit` as this profile's (0 points here), its note saying where it came from."""
    how = f"{fit.points} results there" if fit.points else f"there: {fit.note}"
    return FittedEfficiency(unit=unit, runtime=runtime, provider=provider, precision=precision,
                            efficiency=fit.efficiency, points=0, held_out=0,
                            note=f"efficiency transferred from calibration_sibling {sibling} ({how})")


def calibrate_from_published(profile: DeviceProfile, *, registry: str | Path | Mapping[str, str | Path] | None = None,
                             progress: Progress | None = None,
                             siblings: Mapping[str, DeviceProfile] | None = None) -> Calibration:
    """Fit `profile`'s runtime efficiencies to its non-reserved reference results; predict the reserved ones.
    Does not save (the CLI does). `registry`: where reference model names resolve (see resolve_model);
    `progress(done, total, what)` is called per reference result tabulated; `siblings`: profiles by name where a
    `calibration_sibling` is looked up (default: the shipped profiles)."""
    if not profile.reference_results and not profile.calibration_sibling:
        raise InputError(f"profile {profile.name}: no reference_results to fit to (add published latencies with "
                         f"their sources to the profile)")
    sibling_fits = _sibling_fits(profile, siblings, registry)  # {} without a calibration_sibling
    specs: dict[tuple, ModelSpec] = {}
    groups: dict[tuple, list[_Point]] = {}
    from ..modelspec.inspect import inspect_model

    for ref in profile.reference_results:
        key = (ref.model, ref.batch, ref.seq_len, ref.image_size)
        if key not in specs:
            specs[key] = inspect_model(resolve_model(ref.model, registry), batch=ref.batch, seq_len=ref.seq_len,
                                       image_size=ref.image_size)
        rt = next(r for r in profile.runtimes if (r.name, r.provider) == (ref.runtime, ref.provider))
        groups.setdefault((rt.name, rt.provider, rt.unit), []).append(_Point(ref, specs[key], profile, rt))

    notes: list[str] = []
    fits: list[FittedEfficiency] = []
    checks: list[PublishedCheck] = []
    total = sum(len(g) for g in groups.values())
    done = 0
    for (rt_name, provider, unit_name), pts in groups.items():
        rt = pts[0].rt
        unit = profile.unit(unit_name)
        precisions = list(dict.fromkeys(p.ref.precision for p in pts))
        starts = {prec: cm.efficiency(profile, unit, rt, prec) for prec in precisions}
        train = [p for p in pts if not p.ref.reserved_for_validation]
        by_prec = _by_precision(train)
        if not train:
            for prec in precisions:
                start = starts[prec]
                reserved = [p for p in pts if p.ref.precision == prec]
                label = f"{rt_name}/{provider} {prec}"
                sib = sibling_fits.get((rt_name, provider, prec))
                if sib is not None:
                    start = sib.efficiency
                    notes.append(f"{label}: only reserved validation results ({len(reserved)}); takes the efficiency "
                                 f"fitted on sibling {profile.calibration_sibling} (same accelerator architecture, "
                                 f"see citations.calibration_sibling) for the same runtime and precision (compute "
                                 f"{start.compute:.3f}, memory {start.memory:g}, {start.per_op_overhead_us:g} µs/op; "
                                 f"fractions of this device's own peaks) instead of the profile's unfitted guess")
                    fits.append(_sibling_fit(unit_name, rt_name, provider, prec, profile.calibration_sibling, sib))
                else:
                    notes.append(f"{label}: only reserved validation results ({len(reserved)}); left unfitted, the "
                                 f"profile's efficiency (compute {start.compute:g}, memory {start.memory:g}, "
                                 f"{start.per_op_overhead_us:g} µs/op) predicts them")
                for p in reserved:
                    checks.append(_check(p, p.predict_ms(start), used=False))
                    done += 1
                    if progress:
                        progress(done, total, f"{p.ref.model} ({label}, reserved)")
            continue
        # Shared by the runtime's precisions: counted over all of its results that may be fitted.
        fit_overhead = len(train) >= FIT_OVERHEAD_MIN_POINTS
        fit_memory = len(train) >= FIT_MEMORY_MIN_POINTS
        m_grids = {prec: _M_GRID if fit_memory else np.array([starts[prec].memory]) for prec in precisions}
        for p in train:
            p.tabulate(m_grids[p.ref.precision])
            done += 1
            if progress:
                progress(done, total, f"{p.ref.model} ({rt_name}/{provider} {p.ref.precision})")

        effs = _solve(train, precisions, m_grids, starts, fit_memory)
        loo: dict[int, float | None] = {}
        for i, p in enumerate(train):
            rest = train[:i] + train[i + 1:]
            loo[i] = p.predict_ms(_solve(rest, precisions, m_grids, starts, fit_memory)[p.ref.precision]) \
                if rest else None
        kept = [n for n, fitted in (("memory fraction", fit_memory), ("per-op overhead", fit_overhead)) if not fitted]
        shared = ", ".join(precisions)
        for prec in precisions:
            label = f"{rt_name}/{provider} {prec}"
            mine = by_prec.get(prec, [])
            eff = effs[prec]
            if mine:
                note = ("fitted compute" + (", per-op overhead" if fit_overhead else "")
                        + (", memory fraction" if fit_memory else "")
                        + (f" (shared by {shared}: one runtime)" if len(precisions) > 1 and
                           (fit_overhead or fit_memory) else "")
                        + (f"; kept the profile's {' and '.join(kept)} ({len(train)} results: overhead needs "
                           f"{FIT_OVERHEAD_MIN_POINTS}, memory {FIT_MEMORY_MIN_POINTS})" if kept else ""))
                idx = [i for i, p in enumerate(train) if p.ref.precision == prec]
                errs = [abs(loo[i] / train[i].published_ms - 1) for i in idx if loo[i] is not None]
                fits.append(FittedEfficiency(unit=unit_name, runtime=rt_name, provider=provider, precision=prec,
                                             efficiency=eff, points=len(mine), held_out=0,
                                             fit_error_median=float(np.median(errs)) if errs else None,
                                             fit_error_max=max(errs) if errs else None,
                                             note=note + "; fit errors are leave-one-out |predicted/published − 1|"))
                for i in idx:
                    checks.append(_check(train[i], train[i].predict_ms(eff), used=True, loo=loo[i]))
            else:
                donor = _donor(by_prec)
                reserved = [p for p in pts if p.ref.precision == prec]
                notes.append(f"{label}: only reserved validation results ({len(reserved)}); takes the compute "
                             f"fraction fitted for {donor} on the same runtime and unit ({eff.compute:.3f}, memory "
                             f"{eff.memory:g}, {eff.per_op_overhead_us:g} µs/op) instead of the profile's unfitted "
                             f"guess")
                fits.append(FittedEfficiency(unit=unit_name, runtime=rt_name, provider=provider, precision=prec,
                                             efficiency=eff, points=0, held_out=0,
                                             note=f"no results that may be fitted at {prec}: compute fraction "
                                                  f"borrowed from the {donor} fit of this runtime"))
            for p in pts:
                if p.ref.reserved_for_validation and p.ref.precision == prec:
                    checks.append(_check(p, p.predict_ms(eff), used=False))
                    done += 1
                    if progress:
                        progress(done, total, f"{p.ref.model} ({label}, reserved)")
    seen = {(k[0], k[1]) for k in groups}
    fitted_here = {(k[0], k[1]) for k, g in groups.items() if any(not p.ref.reserved_for_validation for p in g)}
    have = {(f.runtime, f.provider, f.precision) for f in fits}
    for rt in profile.runtimes:
        if (rt.name, rt.provider) in fitted_here:
            continue
        # A runtime not fitted here takes the sibling's fit for every precision it runs (not only the reserved ones).
        transferred = [(prec, f) for (name, provider, prec), f in sibling_fits.items()
                       if (name, provider) == (rt.name, rt.provider) and (name, provider, prec) not in have
                       and (prec in rt.precisions or cm.COMPUTE_PRECISION.get(prec) in rt.precisions)]
        for prec, f in transferred:
            fits.append(_sibling_fit(rt.unit, rt.name, rt.provider, prec, profile.calibration_sibling, f))
            notes.append(f"{rt.name}/{rt.provider} {prec}: no published results here; takes the efficiency fitted "
                         f"on sibling {profile.calibration_sibling} (same accelerator architecture, see "
                         f"citations.calibration_sibling)")
        if not transferred and (rt.name, rt.provider) not in seen:
            notes.append(f"{rt.name}/{rt.provider}: no published results that may be fitted; left as the profile "
                         f"has it")
    return Calibration(profile=profile.name, target="published", source="published", fits=fits, published=checks,
                       created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes)


def _check(p: _Point, predicted: float, *, used: bool, loo: float | None = None) -> PublishedCheck:
    return PublishedCheck(model=p.ref.model, batch=p.ref.batch, seq_len=p.spec.seq_len, precision=p.ref.precision,
                          runtime=f"{p.rt.name}/{p.rt.provider}", published_ms=p.published_ms,
                          predicted_ms=predicted, used_for_fit=used, leave_one_out_ms=loo,
                          reserved_for_validation=p.ref.reserved_for_validation, source=p.ref.source)
