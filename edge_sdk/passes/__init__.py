"""Compression and export passes: each a pydantic config (edge_sdk/schemas/passes.py) plus one apply function."""

from ..schemas.passes import (DistillConfig, ExportOnnxConfig, ExportTfliteConfig, PassConfig, QuantizeOnnxConfig,
                              StructuredPruneConfig, UnstructuredSparsityConfig)

__all__ = ["DistillConfig", "ExportOnnxConfig", "ExportTfliteConfig", "PassConfig", "QuantizeOnnxConfig",
           "StructuredPruneConfig", "UnstructuredSparsityConfig"]
