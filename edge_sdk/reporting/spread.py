"""Several devices, one profile: the spread of their measurements (a fleet benchmarked with `bench --fleet`).

Only like is compared with like: the same bundle, batch size and input kind, each device's newest result. Where
several such groups exist, the one measured on the most devices is shown.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from ..schemas.report import DeviceReport, FleetSpread, Measurement


def device_spread(measured: list[Measurement]) -> FleetSpread | None:
    groups: dict[tuple, dict[str, Measurement]] = defaultdict(dict)
    for m in measured:
        per_target = groups[(m.bundle_id, m.batch, m.input_kind)]
        if m.target not in per_target or m.started_at > per_target[m.target].started_at:
            per_target[m.target] = m
    key, best = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0]), default=(None, {}))
    if len(best) < 2:
        return None
    p50 = {t: m.p50_ms for t, m in sorted(best.items())}
    med = statistics.median(p50.values())
    return FleetSpread(bundle_id=key[0], batch=key[1], input_kind=key[2], p50_ms_by_target=p50,
                       p50_min_ms=min(p50.values()), p50_median_ms=med, p50_max_ms=max(p50.values()),
                       relative=round((max(p50.values()) - min(p50.values())) / med, 4) if med > 0 else 0.0)


def with_spread(d: DeviceReport) -> DeviceReport:
    return d.model_copy(update={"spread": device_spread(d.measured)})


def spread_line(s: FleetSpread) -> str:
    """One line for people (Markdown and HTML)."""
    return (f"spread over {len(s.p50_ms_by_target)} devices (M, bundle {s.bundle_id}, batch {s.batch}, "
            f"{s.input_kind} inputs): p50 min {s.p50_min_ms:.4g} / median {s.p50_median_ms:.4g} / max "
            f"{s.p50_max_ms:.4g} ms, {100 * s.relative:.1f} % apart — "
            + ", ".join(f"{t} {v:.4g}" for t, v in s.p50_ms_by_target.items()))
