"""The on-device benchmark runner. `edge_runner.py` is copied into every bundle as is (stdlib + numpy + one runtime;
it imports nothing from edge_sdk), so this package only tells the build where that file is."""

from pathlib import Path

RUNNER_PATH = Path(__file__).with_name("edge_runner.py")
RUNNER_BUNDLE_PATH = "runner/edge_runner.py"  # where the build puts it; Manifest.runner's default

__all__ = ["RUNNER_BUNDLE_PATH", "RUNNER_PATH"]
