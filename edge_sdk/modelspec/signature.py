"""What tensors does a transformers model take and return? (The export and runner stages feed these names.)"""

from __future__ import annotations

import inspect as _pyinspect
from typing import Any

from ..schemas.modelspec import TensorSig, TransformerInfo


def _forward_params(model: Any) -> set[str]:
    try:
        return set(_pyinspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def torch_signature(model: Any, info: TransformerInfo | None, *, seq_len: int,
                    has_pooler: bool, has_lm_head: bool) -> tuple[list[TensorSig], list[TensorSig]]:
    names = _forward_params(model)
    arch = type(model).__name__
    if info is None:
        return [], []
    if info.family == "vision":
        img = info.image_size or 224
        ch = info.num_channels or 3
        inputs = [TensorSig(name="pixel_values", dtype="float32", shape=["batch", ch, img, img])]
        seq: list[int | str] = ["batch", seq_len, info.hidden_size]
    else:
        inputs = [TensorSig(name=getattr(model, "main_input_name", "input_ids") or "input_ids", dtype="int64",
                            shape=["batch", "sequence"])]
        if "attention_mask" in names:
            inputs.append(TensorSig(name="attention_mask", dtype="int64", shape=["batch", "sequence"]))
        if "token_type_ids" in names and any("token_type" in n for n, _ in model.named_modules()):
            inputs.append(TensorSig(name="token_type_ids", dtype="int64", shape=["batch", "sequence"]))
        seq = ["batch", "sequence", info.hidden_size]
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if has_lm_head and info.vocab_size:
        outputs = [TensorSig(name="logits", dtype="float32", shape=["batch", "sequence", info.vocab_size])]
    elif "Classification" in arch and num_labels:
        shape: list[int | str] = (["batch", "sequence", num_labels] if "TokenClassification" in arch
                                  else ["batch", num_labels])
        outputs = [TensorSig(name="logits", dtype="float32", shape=shape)]
    else:
        outputs = [TensorSig(name="last_hidden_state", dtype="float32", shape=seq)]
        if has_pooler:
            outputs.append(TensorSig(name="pooler_output", dtype="float32", shape=["batch", info.hidden_size]))
    return inputs, outputs
