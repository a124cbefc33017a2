"""Fitting the cost model to published whole-model latencies, for devices we do not own.

A profile's `reference_results` carry published latencies (MLPerf Inference, Qualcomm AI Hub, vendor pages), each
with its model config, shape, precision, runtime and source URL. For every runtime × precision that has results *not*
reserved for validation, this fits that runtime's `Efficiency` by least squares in log space (the error of a 2× miss
counts the same as a 0.5× miss):

- compute fraction always; per-op overhead too from FIT_OVERHEAD_MIN_POINTS results (the ModelSpecs differ enough in
  op count, MobileBERT's 730 ops against DistilBERT's 78, to tell the two apart); memory fraction only from
  FIT_MEMORY_MIN_POINTS. What is not fitted keeps the profile's value, and the calibration says so.
- every efficiency stays in (0, 1]; overhead in [0, MAX_OVERHEAD_US].
- each fitted result gets a leave-one-out prediction (a fit on the others); reserved results are only predicted, with
  the fitted efficiencies, never fitted on (`reserved_for_validation: true`).

A runtime × precision with only reserved results stays unfitted (and is named in the notes). The result is a
`Calibration(source="published")`; the CLI saves it, and `plan` uses it for the profile when nothing measured applies.
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
        bc = cm.block_costs(self.spec, p, unit, self.ref.precision, runtime=rt)
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


def _fit(points: list[_Point], m_grid: np.ndarray, fit_overhead: bool, overhead_us: float) -> tuple[float, int, float]:
    """(compute, memory grid index, overhead µs) minimising Σ (log predicted − log published)²."""
    target = np.log([p.published_ms for p in points])[:, None, None]
    o_vals = _O_FINE if fit_overhead else np.array([overhead_us])
    best = (math.inf, 0.0, 0, overhead_us)
    for mi in range(len(m_grid)):
        roof = np.stack([p.roofline_ms(mi, _C_FINE) for p in points])[:, :, None]        # point × c × 1
        ovh = np.array([p.overhead_per_us for p in points])[:, None, None] * o_vals[None, None, :]
        loss = ((np.log(roof + ovh) - target) ** 2).sum(axis=0)                           # c × o
        ci, oi = np.unravel_index(int(np.argmin(loss)), loss.shape)
        if loss[ci, oi] < best[0]:
            best = (float(loss[ci, oi]), float(_C_FINE[ci]), mi, float(o_vals[oi]))
    return best[1], best[2], best[3]


def calibrate_from_published(profile: DeviceProfile, *, registry: str | Path | Mapping[str, str | Path] | None = None,
                             progress: Progress | None = None) -> Calibration:
    """Fit `profile`'s runtime efficiencies to its non-reserved reference results; predict the reserved ones.
    Does not save (the CLI does). `registry`: where reference model names resolve (see resolve_model);
    `progress(done, total, what)` is called per reference result tabulated."""
    if not profile.reference_results:
        raise InputError(f"profile {profile.name}: no reference_results to fit to (add published latencies with "
                         f"their sources to the profile)")
    specs: dict[tuple, ModelSpec] = {}
    groups: dict[tuple, list[_Point]] = {}
    from ..modelspec.inspect import inspect_model

    for ref in profile.reference_results:
        key = (ref.model, ref.batch, ref.seq_len, ref.image_size)
        if key not in specs:
            specs[key] = inspect_model(resolve_model(ref.model, registry), batch=ref.batch, seq_len=ref.seq_len,
                                       image_size=ref.image_size)
        rt = next(r for r in profile.runtimes if (r.name, r.provider) == (ref.runtime, ref.provider))
        groups.setdefault((rt.name, rt.provider, rt.unit, ref.precision), []).append(
            _Point(ref, specs[key], profile, rt))

    notes: list[str] = []
    fits: list[FittedEfficiency] = []
    checks: list[PublishedCheck] = []
    total = sum(len(g) for g in groups.values())
    done = 0
    for (rt_name, provider, unit_name, precision), pts in groups.items():
        rt = pts[0].rt
        label = f"{rt_name}/{provider} {precision}"
        start = cm.efficiency(profile, profile.unit(unit_name), rt, precision)
        train = [p for p in pts if not p.ref.reserved_for_validation]
        reserved = [p for p in pts if p.ref.reserved_for_validation]
        if not train:
            notes.append(f"{label}: only reserved validation results ({len(reserved)}); left unfitted, the "
                         f"profile's efficiency (compute {start.compute:g}, memory {start.memory:g}, "
                         f"{start.per_op_overhead_us:g} µs/op) predicts them")
            for p in reserved:
                checks.append(_check(p, p.predict_ms(start), used=False))
                done += 1
                if progress:
                    progress(done, total, f"{p.ref.model} ({label}, reserved)")
            continue
        fit_overhead = len(train) >= FIT_OVERHEAD_MIN_POINTS
        fit_memory = len(train) >= FIT_MEMORY_MIN_POINTS
        m_grid = _M_GRID if fit_memory else np.array([start.memory])
        for p in train:
            p.tabulate(m_grid)
            done += 1
            if progress:
                progress(done, total, f"{p.ref.model} ({label})")
        c, mi, o = _fit(train, m_grid, fit_overhead, start.per_op_overhead_us)
        eff = Efficiency(compute=min(max(c, 1e-3), 1.0), memory=float(m_grid[mi]), per_op_overhead_us=round(o, 3))
        kept = [n for n, fitted in (("memory fraction", fit_memory), ("per-op overhead", fit_overhead)) if not fitted]
        note = ("fitted compute" + (", per-op overhead" if fit_overhead else "")
                + (", memory fraction" if fit_memory else "")
                + (f"; kept the profile's {' and '.join(kept)} ({len(train)} results: overhead needs "
                   f"{FIT_OVERHEAD_MIN_POINTS}, memory {FIT_MEMORY_MIN_POINTS})" if kept else ""))
        loo: list[float | None] = []
        for i, p in enumerate(train):
            rest = train[:i] + train[i + 1:]
            if not rest:
                loo.append(None)
                continue
            c_i, mi_i, o_i = _fit(rest, m_grid, len(rest) >= FIT_OVERHEAD_MIN_POINTS, start.per_op_overhead_us)
            loo.append(p.predict_ms(Efficiency(compute=min(max(c_i, 1e-3), 1.0), memory=float(m_grid[mi_i]),
                                               per_op_overhead_us=o_i)))
        errs = [abs(v / p.published_ms - 1) for v, p in zip(loo, train) if v is not None]
        fits.append(FittedEfficiency(unit=unit_name, runtime=rt_name, provider=provider, precision=precision,
                                     efficiency=eff, points=len(train), held_out=0,
                                     fit_error_median=float(np.median(errs)) if errs else None,
                                     fit_error_max=max(errs) if errs else None,
                                     note=note + "; fit errors are leave-one-out |predicted/published − 1|"))
        for p, v in zip(train, loo):
            checks.append(_check(p, p.predict_ms(eff), used=True, loo=v))
        for p in reserved:
            checks.append(_check(p, p.predict_ms(eff), used=False))
            done += 1
            if progress:
                progress(done, total, f"{p.ref.model} ({label}, reserved)")
    seen = {(k[0], k[1]) for k in groups}
    for rt in profile.runtimes:
        if (rt.name, rt.provider) not in seen:
            notes.append(f"{rt.name}/{rt.provider}: no published results that may be fitted; left as the profile has it")
    return Calibration(profile=profile.name, target="published", source="published", fits=fits, published=checks,
                       created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes)


def _check(p: _Point, predicted: float, *, used: bool, loo: float | None = None) -> PublishedCheck:
    return PublishedCheck(model=p.ref.model, batch=p.ref.batch, seq_len=p.spec.seq_len, precision=p.ref.precision,
                          runtime=f"{p.rt.name}/{p.rt.provider}", published_ms=p.published_ms,
                          predicted_ms=predicted, used_for_fit=used, leave_one_out_ms=loo,
                          reserved_for_validation=p.ref.reserved_for_validation, source=p.ref.source)
