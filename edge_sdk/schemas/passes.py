"""The typed pass configs a Plan is made of (data only; no torch import here, so planning stays fast).

Like torchao's `quantize_(model, Int8WeightOnlyConfig())`: a technique is a small config object plus one apply
function; `passes/registry.py` maps config type → apply function. A config's `kind` is its discriminator in JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator
from .base import Strict


class StructuredPruneConfig(Strict):
    """Remove whole attention heads, FFN neurons and transformer layers (the model really gets smaller/faster)."""

    kind: Literal["structured_prune"] = "structured_prune"
    head_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of attention heads removed in every layer")
    ffn_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of FFN intermediate neurons removed")
    drop_layers: int = Field(0, ge=0, description="number of transformer layers removed")
    importance: Literal["weight_norm", "fisher", "activation"] = Field(
        "fisher", description="how heads/neurons are ranked: weight norms, or gradients/activations on calibration data")
    calibration_samples: int = Field(64, ge=1)
    increments: int = Field(1, ge=1, description="gradual pruning: reach the target in this many equal increments, "
                                                 "running `recovery` after each (counts are against the original "
                                                 "model, so the final architecture equals one-shot pruning)")
    recovery: "DistillConfig | None" = Field(
        None, description="distillation after each increment (its step/second budget is split evenly over the "
                          "increments); required when increments > 1. The pass then returns a pruned AND recovered "
                          "model; a following distill pass is extra recovery")

    @model_validator(mode="after")
    def _gradual_needs_recovery(self) -> "StructuredPruneConfig":
        if self.increments > 1 and self.recovery is None:
            raise ValueError(f"increments={self.increments} needs a `recovery` distill config (pruning in "
                             f"increments without recovery between them is one-shot pruning)")
        return self


class UnstructuredSparsityConfig(Strict):
    """Magnitude sparsity (torch.nn.utils.prune, made permanent). Does NOT speed up dense kernels; 2:4 needs sparse
    tensor cores (Ampere+)."""

    kind: Literal["sparsity"] = "sparsity"
    sparsity: float = Field(0.5, gt=0, lt=1)
    pattern: Literal["unstructured", "2:4"] = "unstructured"
    scope: Literal["layer", "global"] = Field(
        "layer", description="unstructured: the same fraction in every Linear, or one global magnitude threshold")


class DistillConfig(Strict):
    """Label-free recovery: distil the pruned student towards the unpruned teacher on unlabeled text."""

    kind: Literal["distill"] = "distill"
    max_steps: int = Field(300, ge=0)
    max_seconds: float | None = Field(None, gt=0, description="wall-clock budget; whichever of steps/seconds ends first")
    learning_rate: float = Field(2e-4, gt=0, description="measured better than 5e-5 on short budgets")
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(64, ge=8)
    hidden_loss_weight: float = Field(1.0, ge=0, description="MSE on every layer's hidden states")
    embedding_loss_weight: float = Field(1.0, ge=0, description="cosine loss on pooled embeddings")
    attention_loss_weight: float = Field(0.0, ge=0, description="MiniLM-v2 attention-relation KL on the last layer")
    seed: int = Field(0, description="order of the calibration texts")

    @model_validator(mode="before")
    @classmethod
    def _moved_gradual_steps(cls, data):
        """Plans saved before gradual pruning moved to the prune pass carry `gradual_steps: 1` (accepted, it meant
        nothing); a real schedule is refused with where it lives now."""
        if isinstance(data, dict) and "gradual_steps" in data:
            data = dict(data)
            steps = data.pop("gradual_steps")
            if steps not in (1, None):
                raise ValueError(f"distill.gradual_steps={steps}: gradual pruning is now configured on the prune pass "
                                 f"(structured_prune.increments={steps} with structured_prune.recovery = this distill "
                                 f"config); distill only recovers the model it receives")
        return data


class ExportOnnxConfig(Strict):
    kind: Literal["export_onnx"] = "export_onnx"
    opset: int = Field(17, ge=13, le=23)
    dynamic_axes: bool = True
    optimize: bool = Field(False, description="onnxruntime.transformers fusion (SkipLayerNorm, BiasGelu, Attention)")
    exporter: Literal["torchscript", "dynamo"] = Field(
        "torchscript", description="torch.onnx exporter: torchscript (dynamo=False; fast, fusable) or dynamo (opset >= 18)")
    seq_len: int = Field(128, ge=1, description="static sequence length when dynamic_axes is false (batch is then 1)")

    @model_validator(mode="after")
    def _dynamo_opset(self) -> "ExportOnnxConfig":
        if self.exporter == "dynamo" and self.opset < 18:
            raise ValueError(f"the dynamo exporter emits opset 18 or newer; got opset {self.opset}")
        if self.exporter == "torchscript" and self.opset > 20:
            raise ValueError(f"the torchscript exporter supports opset <= 20; got opset {self.opset}")
        return self


class QuantizeOnnxConfig(Strict):
    """onnxruntime.quantization: dynamic int8 (per-channel), static int8 QDQ, fp16, or int4 weight-only."""

    kind: Literal["quantize_onnx"] = "quantize_onnx"
    mode: Literal["dynamic_int8", "static_int8", "fp16", "int4_weight_only"]
    per_channel: bool = True
    exclude_ffn_down: bool = Field(True, description="static int8: keep FFN down-projections in float (GELU outliers)")
    calibration_samples: int = Field(64, ge=1)
    reduce_range: bool = Field(True, description="static int8: 7-bit weights, so uint8×int8 products cannot saturate "
                                                  "on x86 without VNNI; false for VNNI/ARM targets")
    block_size: int = Field(32, ge=16, description="int4 weight-only block size")

    @model_validator(mode="after")
    def _block(self) -> "QuantizeOnnxConfig":
        if self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two, got {self.block_size}")
        return self


class ExportTfliteConfig(Strict):
    """LiteRT (.tflite) through litert-torch; int8/fp16 through ai-edge-quantizer (see passes/export_tflite.py)."""

    kind: Literal["export_tflite"] = "export_tflite"
    quantize: Literal["none", "dynamic_int8", "fp16", "full_int8"] = Field(
        "none", description="none: fp32; dynamic_int8: int8 weights, float activations (recipe dynamic_wi8_afp32); "
                            "fp16: fp16 weights; full_int8: int8 weights and activations, calibrated")
    seq_len: int = Field(128, ge=1, description="static sequence length of the exported graph (batch is 1)")
    calibration_samples: int = Field(64, ge=1, description="full_int8: calibration inputs (from the build's "
                                                           "calibration texts/images)")


PassConfig = Annotated[
    Union[StructuredPruneConfig, UnstructuredSparsityConfig, DistillConfig, ExportOnnxConfig, QuantizeOnnxConfig,
          ExportTfliteConfig],
    Field(discriminator="kind"),
]

StructuredPruneConfig.model_rebuild()
