"""Quality: evaluation data, metrics against the uncompressed model, and the gate that enforces the budget.

Importing this package does not import torch or onnxruntime; the functions that need them import them when called.
"""

from .eval_data import EvalData, builtin_sentences, default_eval_data, load_eval_data, synthetic_images
from .gate import check, evaluate, metric
from .runners import onnx_embed_fn, ort_session, torch_embed_fn

__all__ = ["EvalData", "builtin_sentences", "check", "default_eval_data", "evaluate", "load_eval_data", "metric",
           "onnx_embed_fn", "ort_session", "synthetic_images", "torch_embed_fn"]
