"""The ModelSpec artifact: what a model is made of, per layer, without its weights.

Everything the planner needs (params, FLOPs, bytes moved, heads, FFN width) for one batch size and sequence length.
Counts are exact integers; FLOPs count 2 per multiply-accumulate; bytes are at fp32 unless a name says otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from .base import Strict

LayerKind = Literal[
    "embedding", "attention_qkv", "attention_scores", "attention_context", "attention_out", "ffn_up", "ffn_down",
    "norm", "activation", "softmax", "pooler", "lm_head", "patch_embed", "classifier", "other",
]
LAYER_KINDS: tuple[str, ...] = LayerKind.__args__  # type: ignore[attr-defined]

SourceKind = Literal["builtin", "hf_dir", "config", "onnx", "module"]
Family = Literal["encoder", "decoder", "encoder-decoder", "vision"]

#: Bytes per weight element when stored at a precision (int4 packs two per byte).
BYTES_PER_PARAM: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


class TensorSig(Strict):
    """A model input or output. Symbolic dimensions are strings ("batch", "sequence")."""

    name: str
    dtype: str
    shape: list[int | str]


class LayerSpec(Strict):
    """One operator of the forward pass: a module with weights, or a weightless op inside attention/FFN."""

    name: str = Field(description="Module path (e.g. encoder.layer.0.attention.self.query) or a synthetic op name")
    kind: LayerKind
    block: int | None = Field(None, description="Transformer block index; None outside the block stack")
    module: str | None = Field(None, description="Real module path / ONNX node; None for weightless synthetic ops")
    params: int = Field(0, ge=0, description="Parameters owned by this entry (tied weights count once, at the owner)")
    weight_bytes_fp32: int = Field(0, ge=0)
    flops: int = Field(0, ge=0, description="FLOPs for one forward at the spec's batch/seq_len (2 per MAC)")
    activation_bytes: int = Field(0, ge=0, description="Bytes of the op's output at fp32")
    input_bytes: int = Field(0, ge=0, description="Bytes of activations the op reads at fp32 (weights excluded)")
    gemm: bool = Field(False, description="Matmul-like: its FLOPs run on GEMM units; its weights can be quantized")
    heads: int | None = Field(None, description="Attention heads this op works on (KV heads for k/v projections)")
    in_features: int | None = None
    out_features: int | None = None
    tokens: int | None = Field(None, description="Rows the op is applied to (batch x sequence, or batch for a pooler)")
    tied_to: str | None = Field(None, description="Owner of the shared weight when this entry reuses one")


class TransformerInfo(Strict):
    model_type: str
    family: Family
    num_layers: int = Field(ge=0)
    hidden_size: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    ffn_size: int = Field(ge=0)
    vocab_size: int | None = None
    max_positions: int | None = None
    image_size: int | None = None
    patch_size: int | None = None
    num_channels: int | None = None
    gated_ffn: bool = False
    tie_word_embeddings: bool = False


class ModelSpec(Strict):
    schema_version: Literal[1] = 1
    name: str
    source: str = Field(description="What was inspected: builtin name, path, or module class")
    source_kind: SourceKind
    architecture: str | None = Field(None, description="transformers class (e.g. LlamaForCausalLM) when known")
    batch: int = Field(gt=0)
    seq_len: int = Field(gt=0, description="Tokens per sample; for ViT the patches plus CLS (and distillation) tokens")
    transformer: TransformerInfo | None = Field(None, description="None when the architecture was not recognised "
                                                                  "(generic walk: linear FLOPs only)")
    layers: list[LayerSpec]
    total_params: int = Field(ge=0)
    weight_bytes_fp32: int = Field(ge=0)
    total_flops: int = Field(ge=0)
    inputs: list[TensorSig] = Field(default_factory=list)
    outputs: list[TensorSig] = Field(default_factory=list)
    has_weights: bool
    dtype: str = Field(description="Storage dtype of the weights at the source (float32, float16, ...)")
    notes: list[str] = Field(default_factory=list, description="Assumptions and limits of this inspection")

    # -- views -------------------------------------------------------------------------------------------------
    def blocks(self) -> dict[int, list[LayerSpec]]:
        """Layers grouped by transformer block index, in block order."""
        out: dict[int, list[LayerSpec]] = {}
        for layer in self.layers:
            if layer.block is not None:
                out.setdefault(layer.block, []).append(layer)
        return dict(sorted(out.items()))

    def layers_of(self, *kinds: str) -> list[LayerSpec]:
        return [layer for layer in self.layers if layer.kind in kinds]

    @property
    def gemm_flops(self) -> int:
        return sum(layer.flops for layer in self.layers if layer.gemm)

    @property
    def peak_activation_bytes(self) -> int:
        """Largest single op output at fp32 (a lower bound on the activation memory a forward needs)."""
        return max((layer.activation_bytes for layer in self.layers), default=0)

    def params_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kind] = out.get(layer.kind, 0) + layer.params
        return out

    def weight_bytes(self, precision: str) -> int:
        """Weight storage at a precision.

        Float precisions store every parameter at that width. Integer precisions (int8, int4) quantize the weights
        of GEMM and embedding layers and keep the rest (norms, vision position tables) at fp32, as
        onnxruntime/ai-edge-quantizer dynamic quantization does; per-channel scales are not counted (<1%).
        """
        if precision not in BYTES_PER_PARAM:
            raise ValueError(f"unknown precision '{precision}' (expected one of {', '.join(BYTES_PER_PARAM)})")
        width = BYTES_PER_PARAM[precision]
        if precision in ("int8", "int4"):
            quant = sum(layer.params for layer in self.layers if layer.gemm or layer.kind == "embedding")
            return int(round(quant * width + (self.total_params - quant) * 4))
        return int(round(self.total_params * width))

    def kv_cache_bytes(self, context_len: int, bytes_per_elem: float = 2, batch: int | None = None) -> int:
        """KV cache of a decoder: 2 (K and V) x layers x kv_heads x head_dim x context x batch x bytes.

        0 for encoders and vision models (they keep no cache) and when the architecture is unknown.
        """
        t = self.transformer
        if t is None or t.family not in ("decoder", "encoder-decoder"):
            return 0
        b = self.batch if batch is None else batch
        return int(2 * t.num_layers * t.num_kv_heads * t.head_dim * context_len * b * bytes_per_elem)
