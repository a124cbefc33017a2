"""inspect: model source → ModelSpec (per-layer params, FLOPs, activation bytes), without loading weights.

Sources: the builtin `minilm`, a Hugging Face model directory, a transformers config.json (built on the meta device,
so a 70B config inspects in about a second), an ONNX file, or an nn.Module.

Params are those of the real module (exactly `sum(p.numel() for p in model.parameters())`), or of the ONNX
initializers. FLOPs are analytic, 2 per multiply-accumulate, for one forward over `batch` samples of `seq_len`
tokens. For an encoder with L layers, hidden h, FFN width f and sequence s the GEMM FLOPs are

    2 * batch * L * (4*s*h^2 + 2*s^2*h + 2*s*h*f)   (+ 2*batch*h^2 for a pooler)

— Q, K, V and output projections (4 s h^2), scores QK^T and context PV (2 s^2 h), FFN up and down (2 s h f).
Decoders with grouped-query attention use 2*s*h*(h + 2*kv_heads*head_dim) + 2*s*h^2 for the projections, a gated
(SwiGLU) FFN 3 matmuls of s*h*f, and the LM head 2*s*h*vocab. Softmax, norms and activations add a few FLOPs per
element (`flops.py`). A vision transformer counts its patches plus CLS token as the sequence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schemas.modelspec import ModelSpec, TransformerInfo

DEFAULT_SEQ_LEN = 128


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a positive integer, got {value!r}")
    if value <= 0:
        raise InputError(f"{what} must be a positive integer, got {value}")
    return value


def inspect_model(source: Any, *, batch: int = 1, seq_len: int | None = None,
                  image_size: int | None = None) -> ModelSpec:
    """Describe a model for one forward of `batch` x `seq_len` tokens (default 128; vision: set by the image size).

    `source`: builtin name, HF model directory, config.json, .onnx file (str or Path), or an nn.Module.
    """
    batch = _positive(batch, "batch")
    if seq_len is not None:
        seq_len = _positive(seq_len, "seq_len")
    if image_size is not None:
        image_size = _positive(image_size, "image_size")
    if not isinstance(source, (str, os.PathLike)):
        import torch

        if isinstance(source, torch.nn.Module):
            return inspect_module(source, batch=batch, seq_len=seq_len, image_size=image_size)
        raise InputError(f"model: expected a name, a path or a torch.nn.Module, got {type(source).__name__}")

    from .sources import find_weights, resolve_source

    src = resolve_source(source)
    if src.kind == "onnx":
        from .onnx_walk import inspect_onnx

        return inspect_onnx(src.path, batch=batch, seq_len=seq_len, image_size=image_size)
    from .hf_config import build_on_meta, config_dtype, load_config

    cfg = load_config(src.config_path)
    model = build_on_meta(cfg, src.config_path)
    has_weights = src.kind == "builtin" or (src.kind == "hf_dir" and bool(find_weights(src.path)))
    notes = []
    if src.kind == "hf_dir" and not has_weights:
        notes.append("no weight files in the directory: inspected from config.json only")
    source_str = src.given if src.kind == "builtin" else str(src.path.resolve())
    return inspect_module(model, batch=batch, seq_len=seq_len, image_size=image_size, source=source_str,
                          source_kind=src.kind, name=src.name, has_weights=has_weights, dtype=config_dtype(cfg),
                          notes=notes, origin=src.config_path)


def inspect_module(model: Any, *, batch: int = 1, seq_len: int | None = None, image_size: int | None = None,
                   source: str | None = None, source_kind: str = "module", name: str | None = None,
                   has_weights: bool | None = None, dtype: str | None = None, notes: list[str] | None = None,
                   origin: Path | str | None = None) -> ModelSpec:
    """ModelSpec of an instantiated nn.Module (real or meta tensors)."""
    from . import flops as F
    from .hf_config import quiet_transformers, transformer_info
    from .signature import torch_signature
    from .torch_walk import Forward, add_block_ops, block_prefixes, module_layers

    notes = list(notes or [])
    where = str(origin) if origin is not None else (name or type(model).__name__)
    cfg = getattr(model, "config", None)
    arch = type(model).__name__
    info: TransformerInfo | None = None
    if cfg is not None and hasattr(cfg, "model_type"):
        with quiet_transformers():
            info = transformer_info(cfg, model, image_size=image_size)
    if image_size is not None and (info is None or info.family != "vision"):
        kind = info.family if info is not None else "non-transformer"
        raise InputError(f"{where}: image_size (--image-size) applies to vision models only; this model is {kind}")

    num_patches = None
    if info is not None and info.family == "vision":
        tokens, num_patches = _vision_tokens(model, cfg, info, where)
        if seq_len is not None and seq_len != tokens:
            notes.append(f"seq_len {seq_len} ignored: a vision model's sequence is set by the image size "
                         f"({info.image_size}px / {info.patch_size}px patches → {tokens} tokens)")
        seq = tokens
    else:
        seq = seq_len or DEFAULT_SEQ_LEN
        if info is not None and info.max_positions and seq > info.max_positions and info.family == "encoder":
            notes.append(f"seq_len {seq} exceeds the model's max_position_embeddings ({info.max_positions})")

    per_sample = info is not None and info.family in ("encoder", "vision") and any(
        k in arch for k in ("SequenceClassification", "ImageClassification", "MultipleChoice"))
    fwd = Forward(batch=batch, seq_len=seq, num_patches=num_patches,
                  act=F.act_family(getattr(cfg, "hidden_act", None) or getattr(cfg, "activation_function", None)),
                  per_sample_head=per_sample)
    layers, walk_notes = module_layers(model, fwd, info)
    notes += walk_notes
    structured = info is not None and bool(block_prefixes(model)) and any(
        layer.kind == "attention_qkv" and layer.block is not None for layer in layers)
    if structured:
        assert info is not None
        n_blocks = len({layer.block for layer in layers if layer.block is not None})
        if n_blocks != info.num_layers and info.family != "encoder-decoder":
            notes.append(f"found {n_blocks} blocks with weights but the config says {info.num_layers} layers "
                         f"(shared layers are counted once)")
        layers = add_block_ops(layers, fwd, info)
    else:
        why = (f"architecture {arch} is not a recognised transformer stack" if info is None
               else f"no attention projections found in the blocks of {arch}")
        notes.append(f"generic walk: {why}; params are exact, FLOPs cover linear layers only "
                     f"(attention scores, softmax and activations not counted)")
        info = None

    total_params = sum(p.numel() for p in model.parameters())
    counted = sum(layer.params for layer in layers)
    if counted != total_params:  # cannot happen with the walk above; guard against future edits
        notes.append(f"layer params ({counted}) differ from the module's ({total_params})")
    has_lm_head = any(layer.kind == "lm_head" for layer in layers)
    has_pooler = any(layer.kind == "pooler" for layer in layers)
    inputs, outputs = torch_signature(model, info, seq_len=seq, has_pooler=has_pooler, has_lm_head=has_lm_head)
    params = list(model.parameters())
    if has_weights is None:
        has_weights = bool(params) and not any(p.is_meta for p in params)
    if dtype is None:
        dtype = str(params[0].dtype).replace("torch.", "") if params else "float32"
    return ModelSpec(
        name=name or arch, source=source or f"<module {arch}>", source_kind=source_kind,  # type: ignore[arg-type]
        architecture=arch, batch=batch, seq_len=seq, transformer=info, layers=layers,
        total_params=total_params, weight_bytes_fp32=total_params * 4,
        total_flops=sum(layer.flops for layer in layers), inputs=inputs, outputs=outputs,
        has_weights=has_weights, dtype=dtype, notes=notes)


def _vision_tokens(model: Any, cfg: Any, info: TransformerInfo, where: str) -> tuple[int, int]:
    """(tokens per image, patches): patches plus the extra tokens (CLS, distillation) the position table holds."""
    img, patch = info.image_size, info.patch_size
    if not img or not patch:
        raise InputError(f"{where}: vision config needs image_size and patch_size")
    if img % patch:
        raise InputError(f"{where}: image size {img} is not a multiple of the patch size {patch}")
    num_patches = (img // patch) ** 2
    cfg_img = getattr(cfg, "image_size", img)
    cfg_img = cfg_img[0] if isinstance(cfg_img, (list, tuple)) else cfg_img
    extra = 1
    for pname, p in model.named_parameters():
        if pname.endswith("position_embeddings") and p.dim() == 3:
            extra = max(0, int(p.shape[1]) - (int(cfg_img) // patch) ** 2)
            break
    return num_patches + extra, num_patches

