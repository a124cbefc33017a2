"""Which versions of which tools made this artifact? Pinned in bundles, reports and calibrations so a reader can
reproduce the result, or know to distrust it."""

from __future__ import annotations

import platform
from importlib import metadata

DISTRIBUTIONS = ("edge-sdk", "torch", "transformers", "onnx", "onnxruntime", "onnxscript", "onnxconverter-common",
                 "ai-edge-litert", "onnxruntime-genai", "numpy", "tokenizers", "pydantic", "PyYAML", "typer", "rich")


def tool_versions() -> dict[str, str]:
    """python, platform and every installed distribution of DISTRIBUTIONS (missing ones are left out)."""
    out = {"python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}"}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
