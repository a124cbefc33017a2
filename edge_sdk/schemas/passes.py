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
    allocation: Literal["uniform", "global"] = Field(
        "uniform", description="uniform: every layer loses the same share; global: one ranking over all layers "
                               "decides how many each keeps (same total, so the same FLOPs; data-driven scores only; "
                               "MiniLM FFN −50 %: one-shot cosine 0.831 vs 0.792, 0.939 vs 0.934 after 600 steps)")
    reconstruct_samples: int = Field(
        0, ge=0, description="calibration texts/images on which every layer's FFN down projection is refitted by "
                             "least squares to the unpruned model's outputs after the cut (0: off; data-driven "
                             "importance only). For pruning WITHOUT recovery: MiniLM FFN −50 % one-shot held-out "
                             "cosine 0.831 → 0.901 (2,048 texts). Off by default because distillation after it ends "
                             "lower (192 steps: 0.914 vs 0.921; 960 steps: 0.936 vs 0.946, benchmarks/recovery.py)")
    increments: int = Field(1, ge=1, description="gradual pruning: reach the target in this many equal increments, "
                                                 "running `recovery` after each (counts are against the original "
                                                 "model, so the final architecture equals one-shot pruning)")
    recovery: "DistillConfig | None" = Field(
        None, description="distillation after each increment (its step/second budget is split over the increments, "
                          "see final_recovery_share); required when increments > 1. The pass then returns a pruned "
                          "AND recovered model; a following distill pass is extra recovery")
    final_recovery_share: float | None = Field(
        None, gt=0, lt=1, description="share of the recovery budget spent after the last increment (the final "
                                      "architecture); the earlier increments split the rest. None: equal shares")

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
    learning_rate: float = Field(4e-4, gt=0, description="peak LR; measured best of 2e-4/4e-4/1e-3 (MiniLM)")
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(64, ge=8)
    hidden_loss_weight: float = Field(1.0, ge=0, description="MSE on every layer's hidden states")
    embedding_loss_weight: float = Field(1.0, ge=0, description="cosine loss on pooled embeddings")
    attention_loss_weight: float = Field(0.0, ge=0, description="MiniLM-v2 attention-relation (Q-Q, K-K, V-V) KL")
    attention_layers: Literal["last", "all"] = Field("all", description="layers the attention-relation loss covers")
    lr_schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="decay after the warm-up")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="share of the budget spent warming the LR up")
    min_lr_fraction: float = Field(0.0, ge=0, le=1, description="the LR decays to this share of learning_rate")
    train_embeddings: bool = Field(False, description="pruning never touches the embeddings; freezing them halves "
                                                      "AdamW's work (11.7 M of MiniLM's 22.7 M parameters)")
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
    sensitivity: bool = Field(False, description="static int8: measure which weight MatMuls to keep in float on "
                                                 "this model (SQNR ranking, then the fewest that meet max_drop) "
                                                 "instead of the FFN down-projections")
    max_drop: float = Field(0.005, gt=0, lt=1, description="static int8 with sensitivity: allowed embedding "
                                                          "cosine drop on held-back calibration inputs")

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


class ExportOpenvinoConfig(Strict):
    """OpenVINO IR (model.xml + model.bin) through `openvino.convert_model`; int8 and weight compression through
    NNCF (see passes/export_openvino.py)."""

    kind: Literal["export_openvino"] = "export_openvino"
    quantize: Literal["none", "int8", "int8_weights", "int4_weights"] = Field(
        "none", description="none: fp32 IR; int8: NNCF post-training int8 (weights and activations, calibrated); "
                            "int8_weights / int4_weights: NNCF weight compression (activations stay float; the "
                            "CPU plugin quantizes them per token at run time)")
    accuracy_control: bool = Field(True, description="int8: nncf.quantize_with_accuracy_control, which returns "
                                                     "ops to float, most sensitive first, until the embedding "
                                                     "cosine drop on held-back calibration inputs is ≤ max_drop")
    max_drop: float = Field(0.005, gt=0, lt=1, description="accuracy control's allowed cosine drop")
    calibration_samples: int = Field(300, ge=1, description="int8: calibration inputs (NNCF's default subset)")
    validation_samples: int = Field(64, ge=1, description="int8 with accuracy control: held-back inputs it "
                                                          "validates on (never the build's evaluation set)")
    group_size: int = Field(128, ge=-1, description="int4_weights: weights per scale (-1: per channel)")
    static_shape: list[int] | None = Field(None, description="input shape (e.g. [1, 128]: batch × tokens) the "
                                                          "device also compiles a fixed-shape model for; other "
                                                          "shapes run on the dynamic one")
    inference_precision: Literal["f32", "bf16", "f16"] = Field(
        "f32", description="INFERENCE_PRECISION_HINT the bundle is compiled with: f32; bf16 only where the CPU has "
                           "AVX512_BF16/AMX; f16 for GPU/NPU plans (the IR's weights are then stored in fp16 too)")


class ExportGenaiConfig(Strict):
    """Decoder LLMs: ONNX with a KV cache (past/present inputs and outputs) through onnxruntime-genai's model
    builder, which also writes genai_config.json; int4/int8 are block-wise weight-only (MatMulNBits)."""

    kind: Literal["export_genai"] = "export_genai"
    precision: Literal["int4", "int8", "fp16", "fp32"] = Field("int4", description="weights; fp16 needs a GPU")
    block_size: int = Field(32, ge=16, le=256, description="int4/int8: weights per scale (MatMulNBits block)")
    accuracy_level: int | None = Field(None, ge=1, le=4, description="int4/int8 MatMulNBits compute type: 4 int8 "
                                                                     "activations (the builder's CPU default), 1 fp32")
    execution_provider: Literal["cpu", "cuda"] = "cpu"
    context_length: int | None = Field(None, ge=1, description="max tokens (prompt + generated) written to "
                                                               "genai_config.json; None: max_position_embeddings")

    @model_validator(mode="after")
    def _block(self) -> "ExportGenaiConfig":
        if self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two, got {self.block_size}")
        return self


PassConfig = Annotated[
    Union[StructuredPruneConfig, UnstructuredSparsityConfig, DistillConfig, ExportOnnxConfig, QuantizeOnnxConfig,
          ExportTfliteConfig, ExportOpenvinoConfig, ExportGenaiConfig],
    Field(discriminator="kind"),
]

StructuredPruneConfig.model_rebuild()
