"""How long does a linear layer take on a calibrated runtime? Read it off the measured GEMM table.

A CPU GEMM's fraction of peak depends on its shape (short K or few tokens leave the kernel starved), so once
`edge-sdk calibrate` has timed linear layers at BERT-family shapes, the cost model uses those times — per FLOP,
interpolated in log-space over the token count, at the measured (in, out) widths nearest to the layer's — instead of
one fitted efficiency. Layers outside the table's widths take the nearest widths' per-FLOP time, and token counts
outside its range the nearest end's: an approximation the calibration's held-out error does not cover.
"""

from __future__ import annotations

import math

from ..schemas.profile import GemmTiming


def measured_gemm_s(table: list[GemmTiming], m: float, k: int, n: int) -> float | None:
    """Seconds for an (m × k) · (k × n) GEMM from `table`, or None when the table is empty."""
    if not table or m <= 0 or k <= 0 or n <= 0:
        return None
    pairs = {(t.k, t.n) for t in table}
    pk, pn = min(pairs, key=lambda p: (abs(math.log(p[0] / k)) + abs(math.log(p[1] / n)), p))
    pts = sorted((t.m, t.ms * 1e-3 / (2.0 * t.m * t.k * t.n)) for t in table if (t.k, t.n) == (pk, pn))
    per_flop = _interpolate(pts, m)
    return per_flop * 2.0 * m * k * n


def _interpolate(pts: list[tuple[int, float]], m: float) -> float:
    if m <= pts[0][0]:
        return pts[0][1]
    if m >= pts[-1][0]:
        return pts[-1][1]
    for (m0, f0), (m1, f1) in zip(pts, pts[1:]):
        if m0 <= m <= m1:
            w = (math.log(m) - math.log(m0)) / (math.log(m1) - math.log(m0))
            return math.exp(math.log(f0) + w * (math.log(f1) - math.log(f0)))
    return pts[-1][1]  # pragma: no cover - the loop always finds the bracket
