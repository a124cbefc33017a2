"""Compression and export passes: each a pydantic config (configs.py) plus one apply function."""

from ..schemas.passes import (PASS_KINDS, DistillConfig, ExportOnnxConfig, ExportTfliteConfig, PassConfig,
                      QuantizeOnnxConfig, StructuredPruneConfig, UnstructuredSparsityConfig)

__all__ = ["PASS_KINDS", "DistillConfig", "ExportOnnxConfig", "ExportTfliteConfig", "PassConfig",
           "QuantizeOnnxConfig", "StructuredPruneConfig", "UnstructuredSparsityConfig"]
