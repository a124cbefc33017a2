"""Benchmarks over a fleet, and the health check a rolling deploy runs on its canaries.

Each device's result is saved as a single-target bench saves it (results/<target>/<UTC time>.json), so `report`
reads every device's measurements — and shows their spread where several devices share a profile.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..remote import DeployTarget
from ..remote.fleet import Board, fleet_result, run_each
from ..schemas.bench import BenchSettings
from ..schemas.fleet import FleetResult
from ..schemas.release import Release
from .remote import bench_remote
from .results import save_result

HEALTH_SETTINGS = dict(warmup=1, iterations=5, batches=[1], inputs="auto", timeout_s=120.0)


def bench_fleet(targets: list[DeployTarget], settings: BenchSettings, *, parallel: int = 4,
                release: str | None = None, bundle: str | Path | None = None, results_dir: str | Path | None = None,
                board: Board | None = None, fleet=None, calibration: bool = True, calibrations_dir=None,
                accept_new_host_key: bool = False) -> FleetResult:
    """`bench` on every target (at most `parallel` at once); each result saved under results_dir when given."""
    t0 = time.monotonic()
    board = board or Board()

    def one(t: DeployTarget, rep):
        rep.stage("benchmarking")
        r = bench_remote(t, release, settings, bundle=bundle, show_progress=False, calibration=calibration,
                         calibrations_dir=calibrations_dir, accept_new_host_key=accept_new_host_key)
        if results_dir is not None:
            save_result(r, results_dir)
        return r

    outcomes = run_each(targets, one, parallel=parallel, board=board)
    return fleet_result("bench", outcomes, parallel=parallel, seconds=time.monotonic() - t0, fleet=fleet)


def bench_health_check(latency_budget_ms: float | None = None, *, accept_new_host_key: bool = False):
    """The canary check: the new release's own runner loads the model and runs the bundle's sample inputs (its
    self-test); with a budget, its p50 at batch 1 must also be within it. Returns check(target, release) →
    None when healthy, else the reason."""
    settings = BenchSettings(**HEALTH_SETTINGS)

    def check(t: DeployTarget, rel: Release) -> str | None:
        r = bench_remote(t, rel.release_id, settings, show_progress=False, calibration=False,
                         accept_new_host_key=accept_new_host_key)
        if not r.batches:
            return "the runner measured nothing (" + "; ".join(f"{s.inputs} batch {s.batch}: {s.reason}"
                                                               for s in r.skipped) + ")"
        p50 = r.batches[0].latency_ms.p50
        if latency_budget_ms is not None and p50 > latency_budget_ms:
            return (f"p50 {p50:.4g} ms at batch 1 is over the latency budget of {latency_budget_ms:g} ms "
                    f"({r.batches[0].iterations} runs)")
        return None

    return check
