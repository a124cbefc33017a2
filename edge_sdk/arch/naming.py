"""What role does a layer play, judging by its module path? (Shared by the PyTorch and the ONNX walks of modelspec
and by tensor-parallel sharding.)

Covers the naming of BERT/RoBERTa/ELECTRA/DistilBERT, ViT/DeiT, GPT-2, OPT, Llama/Mistral/Qwen/Gemma, Falcon,
GPT-NeoX, T5/BART. Anything else is `other`, which keeps its params but gets no attention-specific treatment.
"""

from __future__ import annotations

import re

QKV_LEAVES = {"query", "key", "value", "q_proj", "k_proj", "v_proj", "qkv_proj", "qkv", "c_attn", "query_key_value",
              "wqkv", "q_lin", "k_lin", "v_lin", "q", "k", "v", "in_proj", "w_q", "w_k", "w_v"}
ATTN_OUT_LEAVES = {"o_proj", "out_proj", "dense", "c_proj", "o", "out_lin", "wo", "proj", "out", "w_o"}
FFN_UP_LEAVES = {"gate_proj", "up_proj", "gate_up_proj", "fc1", "c_fc", "w1", "w3", "wi", "wi_0", "wi_1",
                 "dense_h_to_4h", "lin1", "fc_in"}
FFN_DOWN_LEAVES = {"down_proj", "fc2", "c_proj", "w2", "wo", "dense_4h_to_h", "lin2", "fc_out"}
GATE_LEAVES = {"gate_proj", "w1", "wi_0", "gate_up_proj"}
ATTN_SCOPES = ("attention", "attn", "self_attn", "self_attention", "crossattention", "encdecattention",
               "encoder_attn", "selfattention", "sa")
FFN_SCOPES = ("mlp", "ffn", "feed_forward", "feedforward", "intermediate", "densereludense", "dense_relu_dense")
LM_HEAD_SCOPES = ("lm_head", "embed_out", "cls.predictions", "generator_lm_head")
CLASSIFIER_LEAVES = {"classifier", "score", "qa_outputs", "out_proj_cls", "distillation_classifier"}

_BLOCK_RE = re.compile(r"(?:^|[./])(?:layer|layers|h|blocks|block)[./](\d+)(?:[./]|$)")


def block_from_path(path: str) -> int | None:
    """Block index from a dotted or slashed path (`encoder.layer.3.x`, `/model/layers.3/...`)."""
    m = _BLOCK_RE.search(path)
    return int(m.group(1)) if m else None


def _parts(path: str) -> list[str]:
    return [p for p in re.split(r"[./]", path.lower()) if p]


def in_attention(path: str) -> bool:
    parts = _parts(path)
    return any(p in ATTN_SCOPES or p.endswith("attention") or p.endswith("attn") for p in parts[:-1])


def classify_linear(path: str, *, in_block: bool) -> str:
    """Kind of a matmul-with-weights module from its path."""
    parts = _parts(path)
    leaf = parts[-1] if parts else ""
    joined = ".".join(parts)
    if any(s in joined for s in LM_HEAD_SCOPES) or leaf in ("lm_head", "embed_out"):
        return "lm_head"
    if "pooler" in parts:
        return "pooler"
    if leaf in CLASSIFIER_LEAVES or "classifier" in parts:
        return "classifier"
    if not in_block:
        return "other"
    attn = in_attention(path)
    ffn = any(p in FFN_SCOPES for p in parts[:-1])
    if leaf in QKV_LEAVES and not ffn:
        return "attention_qkv"
    if attn and leaf in ATTN_OUT_LEAVES:
        return "attention_out"
    if leaf in FFN_UP_LEAVES or (ffn and "intermediate" in parts):
        return "ffn_up"
    if leaf in FFN_DOWN_LEAVES or (leaf == "dense" and "output" in parts):
        return "ffn_down"
    return "other"


def classify_param_holder(path: str) -> str:
    """Kind of a module that owns parameters directly but is neither linear, embedding nor norm."""
    low = path.lower()
    if any(scope in low for scope in LM_HEAD_SCOPES):
        return "lm_head"
    if "embed" in low:
        return "embedding"
    if "norm" in low or re.search(r"(^|[._])ln(_\w+)?($|[._])", low):
        return "norm"
    return "other"
