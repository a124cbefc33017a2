"""edge-sdk: fit trained transformers to real devices — plan, compress, package, deploy, benchmark, report.

The Python API mirrors the CLI, one function per stage, each taking and returning typed artifacts
(see `edge_sdk/api.py`):

    import edge_sdk
    plans = edge_sdk.plan("minilm", device="jetson")     # the PlanSet `edge-sdk plan --device jetson` prints
    bundle = edge_sdk.build(plans.best, out_dir="out/minilm-jetson")
"""

__version__ = "0.1.0"

from .api import bench, build, calibrate, deploy, graph, inspect, plan, plan_devices, report  # noqa: E402

__all__ = ["__version__", "bench", "build", "calibrate", "deploy", "graph", "inspect", "plan", "plan_devices",
           "report"]
