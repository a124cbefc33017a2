"""What architecture does a transformers config describe, and how is it built without weights?

The model is instantiated on the meta device: every parameter has its real shape but no storage, so a 70B config
builds in well under a second and the parameter count is transformers' own, exactly.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError
from ..arch.naming import GATE_LEAVES
from ..schemas.modelspec import TransformerInfo
from .sources import one_line


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and Python warnings while building (the CLI keeps stderr for errors)."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(before)


def read_config_dict(path: Path) -> dict[str, Any]:
    """Parse and sanity-check a config.json before transformers sees it (clear errors for common mistakes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the config ({one_line(exc)})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); "
                         f"expected a transformers config.json") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object (a transformers config.json), got a JSON "
                         f"{type(data).__name__}")
    model_type = data.get("model_type")
    if model_type is None:
        raise InputError(f"{path}: field 'model_type' is missing; expected a transformers config.json "
                         f"(e.g. \"model_type\": \"bert\")")
    from transformers import CONFIG_MAPPING, __version__

    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        close = difflib.get_close_matches(str(model_type), list(CONFIG_MAPPING.keys()), n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise InputError(f"{path}: field 'model_type': unknown model type {model_type!r} for transformers "
                         f"{__version__}{hint} (custom remote-code architectures are not supported)")
    return data


def load_config(path: Path) -> Any:
    """A transformers PretrainedConfig from a config.json file (or the directory holding it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    file = path / "config.json" if path.is_dir() else path
    read_config_dict(file)
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(str(file), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises ValueError/TypeError/KeyError/OSError for bad fields
        raise InputError(f"{file}: transformers rejected the config: {one_line(exc)}") from None


def model_class(cfg: Any) -> type:
    """The class named in `architectures` when transformers has it for this config, else AutoModel's choice."""
    import transformers
    from transformers import PreTrainedModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    for arch in getattr(cfg, "architectures", None) or []:
        cls = getattr(transformers, str(arch), None)
        if isinstance(cls, type) and issubclass(cls, PreTrainedModel) and isinstance(cfg, cls.config_class):
            return cls
    try:
        return MODEL_MAPPING[type(cfg)]
    except KeyError:
        raise InputError(f"transformers has no model class for model_type '{cfg.model_type}' "
                         f"(config class {type(cfg).__name__})") from None


def build_on_meta(cfg: Any, origin: Path) -> Any:
    """Instantiate the architecture with meta tensors (no memory, no weights)."""
    import torch

    cls = model_class(cfg)
    try:
        with quiet_transformers(), torch.device("meta"):
            model = cls(cfg)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{origin}: cannot build {cls.__name__} from this config: {one_line(exc)}") from None
    return model.eval()


def family_of(cfg: Any, arch: str | None) -> str:
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    if getattr(cfg, "is_encoder_decoder", False):
        return "encoder-decoder"
    if getattr(cfg, "image_size", None) and getattr(cfg, "patch_size", None) and not getattr(cfg, "vocab_size", None):
        return "vision"
    if arch and ("CausalLM" in arch or "LMHeadModel" in arch):
        return "decoder"
    mt = cfg.model_type
    if mt in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and mt not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "decoder"
    return "encoder"


def _first_int(cfg: Any, *names: str) -> int | None:
    for n in names:
        v = getattr(cfg, n, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _as_size(v: Any) -> int | None:
    if isinstance(v, (list, tuple)) and v:
        v = v[0]
    return v if isinstance(v, int) and v > 0 else None


def transformer_info(cfg: Any, model: Any, *, image_size: int | None = None) -> TransformerInfo | None:
    """Structure from the config (+ the built module for what configs do not say); None when it is not a plain
    transformer stack (composite configs such as CLIP, or fields missing)."""
    hidden = _first_int(cfg, "hidden_size", "d_model", "n_embd")
    heads = _first_int(cfg, "num_attention_heads", "encoder_attention_heads", "n_head")
    layers = _first_int(cfg, "num_hidden_layers", "encoder_layers", "num_layers", "n_layer")
    if not (hidden and heads and layers):
        return None
    arch = type(model).__name__
    family = family_of(cfg, arch)
    kv = _first_int(cfg, "num_key_value_heads") or heads
    head_dim = _first_int(cfg, "head_dim") or hidden // heads
    ffn = _first_int(cfg, "intermediate_size", "n_inner", "ffn_dim", "d_ff", "encoder_ffn_dim") or 4 * hidden
    gated = any(name.rsplit(".", 1)[-1] in GATE_LEAVES for name, _ in model.named_modules())
    tied = False
    try:
        out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
        tied = bool(out_emb is not None and in_emb is not None and out_emb.weight is in_emb.weight)
    except (AttributeError, NotImplementedError):
        pass
    return TransformerInfo(
        model_type=cfg.model_type, family=family, num_layers=layers, hidden_size=hidden, num_heads=heads,
        num_kv_heads=kv, head_dim=head_dim, ffn_size=ffn,
        vocab_size=_first_int(cfg, "vocab_size") if family != "vision" else None,
        max_positions=_first_int(cfg, "max_position_embeddings", "n_positions"),
        image_size=image_size or _as_size(getattr(cfg, "image_size", None)) if family == "vision" else None,
        patch_size=_as_size(getattr(cfg, "patch_size", None)) if family == "vision" else None,
        num_channels=_first_int(cfg, "num_channels") if family == "vision" else None,
        gated_ffn=gated, tie_word_embeddings=tied)


def config_dtype(cfg: Any) -> str:
    """Storage dtype the config declares (`dtype`, formerly `torch_dtype`); float32 when it says nothing."""
    with quiet_transformers():
        dt = getattr(cfg, "dtype", None)
    if dt is None:
        return "float32"
    return str(dt).replace("torch.", "")
