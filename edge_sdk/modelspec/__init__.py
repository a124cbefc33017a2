"""modelspec: what a model is made of (per-layer params, FLOPs, bytes), from a name, directory, config, ONNX file
or nn.Module — never needing its weights. See `inspect.py` for the FLOP formula."""

from .inspect import inspect_model, inspect_module
from ..schemas.modelspec import LAYER_KINDS, LayerSpec, ModelSpec, TensorSig, TransformerInfo
from .sources import BUILTIN_MODELS, builtin_model_dir, find_weights, require_weights

__all__ = ["BUILTIN_MODELS", "LAYER_KINDS", "LayerSpec", "ModelSpec", "TensorSig", "TransformerInfo",
           "builtin_model_dir", "find_weights", "inspect_model", "inspect_module", "require_weights"]
