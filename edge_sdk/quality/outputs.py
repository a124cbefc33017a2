"""The numpy side of "what vector stands for one input": text pooling for candidates that only return token vectors.

The definition itself (and the wrapper that puts it inside exported graphs) is model-architecture knowledge and lives
in `edge_sdk/arch/outputs.py`; `mean_pool_l2` here must stay its exact numpy twin. `wrap` / `detect_head` are
re-exported for callers (benchmarks) that import them from here.
"""

from __future__ import annotations

import numpy as np

from ..arch.outputs import LOGIT_OUTPUTS, TEXT_OUTPUTS, Head, detect_head, wrap

__all__ = ["Head", "LOGIT_OUTPUTS", "TEXT_OUTPUTS", "detect_head", "mean_pool_l2", "wrap"]


def mean_pool_l2(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """numpy twin of the in-graph text pooling (arch.outputs), for candidates that only return token vectors."""
    m = mask.astype(np.float32)[..., None]
    pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)
