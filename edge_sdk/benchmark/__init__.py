"""Benchmarking: run a bundle's own runner here or on a target, and turn what it measured into a BenchResult."""

from .inputs import save_sample_inputs
from .local import bench_local
from .results import load_result, save_result
from ..schemas.bench import BatchResult, BenchResult, BenchSettings, LatencyStats, SkippedRun, TegraStats
from .stats import latency_stats


def bench_remote(target, release=None, settings=None, **kw):
    """Benchmark the deployed release on an SSH target (see edge_sdk.bench.remote)."""
    from .remote import bench_remote as _bench_remote

    return _bench_remote(target, release, settings, **kw)


__all__ = ["BatchResult", "BenchResult", "BenchSettings", "LatencyStats", "SkippedRun", "TegraStats", "bench_local",
           "bench_remote", "latency_stats", "load_result", "save_result", "save_sample_inputs"]
