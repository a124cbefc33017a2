"""Latency statistics from raw per-iteration samples (numpy percentiles, linear interpolation)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..schemas.bench import LatencyStats


def latency_stats(latencies_ms: Sequence[float]) -> LatencyStats:
    a = np.asarray(latencies_ms, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"need a non-empty list of finite latencies, got {a.size} values")
    p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
    return LatencyStats(mean=float(a.mean()), p50=float(p50), p90=float(p90), p95=float(p95), p99=float(p99),
                        min=float(a.min()), max=float(a.max()), std=float(a.std()))


def throughput_per_s(latencies_ms: Sequence[float], batch: int) -> float:
    """Items per second over the timed iterations (batch × iterations / summed latency)."""
    total_s = float(np.sum(latencies_ms)) / 1000.0
    if total_s <= 0:
        raise ValueError("latencies sum to zero; cannot compute a throughput")
    return batch * len(latencies_ms) / total_s
