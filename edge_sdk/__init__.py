"""edge-sdk: fit trained transformers to real devices — plan, compress, package, deploy, benchmark, report.

The Python API mirrors the CLI, one function per stage, each taking and returning typed artifacts
(see `edge_sdk/api.py`):

    import edge_sdk
    plans = edge_sdk.plan("minilm", device="jetson")     # the PlanSet `edge-sdk plan --device jetson` prints
    bundle = edge_sdk.build(plans.best, out_dir="out/minilm-jetson")
"""

__version__ = "0.1.0"

from .api import (bench, bench_fleet, build, calibrate, deploy, deploy_fleet, graph, inspect, on_fleet, plan,  # noqa: E402
                  plan_devices, report)

__all__ = ["__version__", "bench", "bench_fleet", "build", "calibrate", "deploy", "deploy_fleet", "graph", "inspect",
           "on_fleet", "plan", "plan_devices", "report"]
