"""How many FLOPs and activation bytes does one operator cost? Analytic formulas, 2 FLOPs per multiply-accumulate.

With T = batch x seq tokens, h hidden, f FFN width, H query heads, d head dim, s sequence:

- linear (in -> out):          2 * T * in * out          (bias adds not counted)
- attention scores Q K^T:      2 * batch * H * s * s * d (full s x s, also for causal prefill)
- attention context P V:       2 * batch * H * s * s * d
- softmax:                     5 per score element       (max, subtract, exp, sum, divide)
- LayerNorm / RMSNorm:         5 / 4 per element
- GELU / SiLU / ReLU / tanh:   8 / 4 / 1 / 4 per element (+1 per element for the gate multiply of a gated FFN)
- embedding lookup:            0 (a gather; it moves bytes, computes nothing)

Summed over a BERT-style encoder this gives, per forward,
    2 * L * (4*s*h^2 + 2*s^2*h + 2*s*h*f)  (+ 2*h^2 per sample for the pooler)
for the GEMMs, plus the small non-GEMM terms above (~0.3% for BERT-base at s=128).
Bytes are fp32 (4 per element); other precisions scale them.
"""

from __future__ import annotations

FP32 = 4

SOFTMAX_FLOPS_PER_ELEM = 5
NORM_FLOPS_PER_ELEM = {"layernorm": 5, "rmsnorm": 4}
ACT_FLOPS_PER_ELEM = {"gelu": 8, "silu": 4, "swish": 4, "relu": 1, "tanh": 4, "sigmoid": 4, "other": 4}


def act_family(hidden_act: object) -> str:
    """Map a transformers `hidden_act` string (gelu_new, silu, quick_gelu, ...) to a FLOP class."""
    name = str(hidden_act or "gelu").lower()
    for key in ("gelu", "silu", "swish", "relu", "tanh", "sigmoid"):
        if key in name:
            return key
    return "other"


def linear(tokens: int, in_features: int, out_features: int) -> dict[str, int]:
    return {"flops": 2 * tokens * in_features * out_features,
            "activation_bytes": tokens * out_features * FP32,
            "input_bytes": tokens * in_features * FP32}


def patch_conv(batch: int, num_patches: int, in_per_patch: int, hidden: int) -> dict[str, int]:
    """A stride = kernel convolution (ViT patch embedding) is a linear layer over the patches."""
    return {"flops": 2 * batch * num_patches * in_per_patch * hidden,
            "activation_bytes": batch * num_patches * hidden * FP32,
            "input_bytes": batch * num_patches * in_per_patch * FP32}


def embedding(tokens: int, dim: int) -> dict[str, int]:
    return {"flops": 0, "activation_bytes": tokens * dim * FP32, "input_bytes": tokens * 8}


def attention_scores(batch: int, heads: int, kv_heads: int, seq_q: int, seq_k: int, head_dim: int) -> dict[str, int]:
    return {"flops": 2 * batch * heads * seq_q * seq_k * head_dim,
            "activation_bytes": batch * heads * seq_q * seq_k * FP32,
            "input_bytes": batch * (heads * seq_q + kv_heads * seq_k) * head_dim * FP32}


def softmax(batch: int, heads: int, seq_q: int, seq_k: int) -> dict[str, int]:
    n = batch * heads * seq_q * seq_k
    return {"flops": SOFTMAX_FLOPS_PER_ELEM * n, "activation_bytes": n * FP32, "input_bytes": n * FP32}


def attention_context(batch: int, heads: int, kv_heads: int, seq_q: int, seq_k: int, head_dim: int) -> dict[str, int]:
    return {"flops": 2 * batch * heads * seq_q * seq_k * head_dim,
            "activation_bytes": batch * seq_q * heads * head_dim * FP32,
            "input_bytes": batch * (heads * seq_q * seq_k + kv_heads * seq_k * head_dim) * FP32}


def norm(tokens: int, hidden: int, rms: bool = False) -> dict[str, int]:
    n = tokens * hidden
    per = NORM_FLOPS_PER_ELEM["rmsnorm" if rms else "layernorm"]
    return {"flops": per * n, "activation_bytes": n * FP32, "input_bytes": n * FP32}


def activation(tokens: int, width: int, act: str, gated: bool = False) -> dict[str, int]:
    n = tokens * width
    per = ACT_FLOPS_PER_ELEM.get(act, ACT_FLOPS_PER_ELEM["other"]) + (1 if gated else 0)
    return {"flops": per * n, "activation_bytes": n * FP32, "input_bytes": n * FP32 * (2 if gated else 1)}


def matmul_flops(a_shape: list[int], b_shape: list[int]) -> int:
    """FLOPs of an (ONNX/numpy-style, broadcasting) matmul from static shapes."""
    if not a_shape or not b_shape:
        return 0
    a = [1] + list(a_shape) if len(a_shape) == 1 else list(a_shape)
    b = list(b_shape) + [1] if len(b_shape) == 1 else list(b_shape)
    m, k, n = a[-2], a[-1], b[-1]
    batch_a, batch_b = a[:-2], b[:-2]
    width = max(len(batch_a), len(batch_b))
    batch_a = [1] * (width - len(batch_a)) + batch_a
    batch_b = [1] * (width - len(batch_b)) + batch_b
    batch = 1
    for x, y in zip(batch_a, batch_b):
        batch *= max(x, y)
    return 2 * batch * m * k * n
