"""Which versions of which tools made this report? Pinned in the report so a reader can reproduce or distrust it."""

from __future__ import annotations

import platform
from importlib import metadata

DISTRIBUTIONS = ("edge-sdk", "torch", "transformers", "onnx", "onnxruntime", "ai-edge-litert", "numpy", "pydantic",
                 "PyYAML", "typer", "rich")


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}"}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
