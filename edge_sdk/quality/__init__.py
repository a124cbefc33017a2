"""Quality: evaluation data, metrics against the uncompressed model, and the gate that enforces the budget.

Importing this package does not import torch or onnxruntime; the functions that need them import them when called.
"""

from .eval_data import EvalData, builtin_sentences, default_eval_data, load_eval_data, synthetic_images
from .gate import check, evaluate, failures, metric
from .images import ImageFormat, image_format
from .runners import onnx_embed_fn, ort_session, torch_embed_fn
from .task import evaluate_task, linear_probe_accuracy, stratified_split
from .task_data import TaskData, load_task_data

__all__ = ["EvalData", "ImageFormat", "TaskData", "builtin_sentences", "check", "default_eval_data", "evaluate",
           "evaluate_task", "failures", "image_format", "linear_probe_accuracy", "load_eval_data", "load_task_data",
           "metric", "onnx_embed_fn", "ort_session", "stratified_split", "synthetic_images", "torch_embed_fn"]
