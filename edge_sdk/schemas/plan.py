"""The Plan artifact: what to do to a model for one device, what the planner predicts, and why.

A Plan is the JSON the build consumes (`edge-sdk build --plan plan.json`); a user may edit it. Numbers under
`predicted` are predictions (roofline + priors), never measurements.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from .base import Strict
from .modelspec import ModelSpec

from .passes import PassConfig

Precision = Literal["fp32", "fp16", "bf16", "int8_dynamic", "int8_static", "int4_weight_only", "fp8"]
Objective = Literal["latency", "throughput", "size", "quality"]


class RuntimeChoice(Strict):
    name: str = Field(description="onnxruntime, litert, tensorrt, ...")
    provider: str = Field(description="execution provider / delegate")
    unit: str = Field(description="compute unit name in the profile")
    format: str = Field(description="artifact format: onnx, tflite, engine, ...")
    version: str | None = None


class Stage(Strict):
    """One pipeline stage: transformer blocks [first_layer, last_layer] inclusive (+ embeddings/head on the ends)."""

    index: int = Field(ge=0)
    first_layer: int = Field(ge=0)
    last_layer: int = Field(ge=0)
    predicted_ms: float = Field(ge=0)
    memory_mb: float = Field(ge=0)


class ParallelLayout(Strict):
    dp: int = Field(1, ge=1, description="data-parallel replicas (batch split)")
    tp: int = Field(1, ge=1, description="tensor-parallel degree (attention/FFN linears sharded)")
    pp: int = Field(1, ge=1, description="pipeline stages (layer stack split)")
    stages: list[Stage] = Field(default_factory=list)
    communication_ms: float = Field(0.0, ge=0, description="predicted all-reduce + activation hand-off time")

    @property
    def world_size(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def is_single(self) -> bool:
        return self.world_size == 1

    def describe(self) -> str:
        if self.is_single:
            return "single device"
        parts = [f"{n}={v}" for n, v in (("dp", self.dp), ("tp", self.tp), ("pp", self.pp)) if v > 1]
        return " × ".join(parts) + f" ({self.world_size} devices)"


class MemoryBreakdown(Strict):
    weights_mb: float
    activations_mb: float
    kv_cache_mb: float = 0.0
    overhead_mb: float
    total_mb: float
    per_device_mb: list[float] = Field(default_factory=list, description="one entry per device for parallel layouts")


class QualityEstimate(Strict):
    """A prior from measurements on similar models (planner/priors.py), not a measurement of this model."""

    expected_cosine: float = Field(ge=-1, le=1)
    cosine_drop: float = Field(ge=0)
    risk: Literal["low", "medium", "high"]
    basis: str
    kind: Literal["estimate"] = "estimate"


#: The benchmark prompt of a decoder bundle: a quarter of the context, at most this many tokens (the rest of the
#: context is left for generated tokens).
BENCH_PROMPT_TOKENS = 32


def bench_prompt_tokens(context: int) -> int:
    """The prompt length a decoder plan states its time to first token for, and its bundle's benchmark uses."""
    return min(BENCH_PROMPT_TOKENS, max(1, context // 4))


class GenerationPrediction(Strict):
    """Decoders: the numbers LLM users compare, predicted by the cost model (batch as planned).

    Prefill is one forward pass over `prompt_tokens`; its logits give the first token, so TTFT is the prefill time.
    Decode is one generated token at a context of `context` (the plan's per-token `latency_ms`)."""

    prompt_tokens: int = Field(ge=1, description="prompt length the TTFT and prefill rate are predicted for; the "
                                                  "build writes a benchmark prompt of this length")
    context: int = Field(ge=1, description="tokens the KV cache holds (the plan's seq_len); decode is costed there")
    ttft_ms: float = Field(ge=0, description="time to first token: the prompt's forward pass")
    prefill_tokens_per_s: float = Field(ge=0, description="batch × prompt tokens / prefill time")
    decode_ms_per_token: float = Field(ge=0, description="one generation step at `context` (= latency_ms)")
    decode_tokens_per_s: float = Field(ge=0, description="generated tokens per second over the batch")
    peak_memory_mb: float = Field(ge=0, description="per device: weights + KV cache at `context` + the larger of "
                                                    "the prefill and decode activations + runtime")
    basis: str = Field(description="how these were costed")
    kind: Literal["prediction"] = "prediction"

    @model_validator(mode="after")
    def _prompt_fits(self) -> "GenerationPrediction":
        if self.prompt_tokens > self.context:
            raise ValueError(f"prompt_tokens {self.prompt_tokens} is longer than the context {self.context}")
        return self


class Prediction(Strict):
    latency_ms: float
    throughput_per_s: float
    memory_mb: MemoryBreakdown
    size_mb: float = Field(description="artifact size on disk")
    quality: QualityEstimate
    bound: Literal["compute", "memory", "overhead", "mixed"] = "mixed"
    generation: GenerationPrediction | None = Field(None, description="decoders: TTFT, prefill and decode tokens/s")
    kind: Literal["prediction"] = "prediction"


class Plan(Strict):
    schema_version: Literal[1] = 1
    model: str = Field(description="model source as given (name, path or config)")
    model_name: str
    device: str = Field(description="device profile name")
    batch: int = Field(1, ge=1)
    seq_len: int = Field(128, ge=1)
    precision: Precision
    runtime: RuntimeChoice
    passes: list[PassConfig]
    layout: ParallelLayout = Field(default_factory=ParallelLayout)
    predicted: Prediction
    rationale: dict[str, str] = Field(default_factory=dict, description="knob → one line saying why")
    objective: Objective = "latency"
    model_spec: ModelSpec | None = Field(None, description="the ModelSpec this plan was made from, so a build runs "
                                                          "it without inspecting the model again (plans inside a "
                                                          "PlanSet leave it to the PlanSet)")

    @model_validator(mode="after")
    def _passes_ordered(self) -> "Plan":
        order = ["structured_prune", "sparsity", "distill", "export_onnx", "export_tflite", "export_openvino",
                 "export_genai", "quantize_onnx"]
        kinds = [p.kind for p in self.passes]
        idx = [order.index(k) for k in kinds]
        if idx != sorted(idx):
            raise ValueError(f"passes must follow the order {order}; got {kinds}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"each pass kind may appear once; got {kinds}")
        if "quantize_onnx" in kinds and "export_onnx" not in kinds:
            raise ValueError("quantize_onnx needs an export_onnx pass before it")
        return self

    def pass_of(self, kind: str):
        return next((p for p in self.passes if p.kind == kind), None)

    def summary(self) -> str:
        bits = [self.precision]
        prune = self.pass_of("structured_prune")
        if prune is not None:
            bits.append(f"heads -{prune.head_ratio:.0%} ffn -{prune.ffn_ratio:.0%}"
                        + (f" layers -{prune.drop_layers}" if prune.drop_layers else ""))
        sp = self.pass_of("sparsity")
        if sp is not None:
            bits.append(f"{sp.pattern} {sp.sparsity:.0%} sparse")
        bits.append(f"{self.runtime.name}/{self.runtime.provider}")
        if not self.layout.is_single:
            bits.append(self.layout.describe())
        return ", ".join(bits)


class Rejection(Strict):
    reason: str
    alternatives: list[str]


class PlanSet(Strict):
    """What `edge-sdk plan` returns for one device: the ranked plans, the Pareto front and what was rejected."""

    model: str
    model_name: str
    device: str
    device_note: str | None = None
    objective: Objective
    constraints: dict[str, float | None]
    plans: list[Plan]
    pareto: list[Plan] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)
    candidates_considered: int = 0
    model_spec: ModelSpec | None = Field(None, description="the ModelSpec every plan here was made from")
    calibration: str | None = Field(None, description="the calibration the predictions rest on (None: the "
                                                      "profile's own efficiencies)")
    notes: list[str] = Field(default_factory=list, description="what a person should know about these plans "
                                                              "(e.g. calibrations passed over, and why)")

    def runnable(self) -> list[Plan]:
        """The ranked plans, each carrying the ModelSpec: what `build` takes."""
        return [p if p.model_spec is not None else p.model_copy(update={"model_spec": self.model_spec})
                for p in self.plans]

    @property
    def best(self) -> Plan:
        return self.runnable()[0]
