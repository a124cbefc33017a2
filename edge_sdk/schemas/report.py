"""The CompatReport artifact: per device, whether and how a model runs, and what stands in the way.

It is the source of truth; report.md and report.html are renderings of it. Every number says what it is:
fields holding predictions live under objects with `kind: "prediction"` (copied from the planner), measured ones
under `kind: "measured"` (copied from BenchResults). Op-support findings say whether they come from a real check
(`check: "session"`: an onnxruntime session was created here) or from shipped data (`check: "data"`, with the
list's version, source URL and confidence).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from .base import Strict
from .bench import LayerTime, OpNodeTime
from .graph import GraphOps, OpCount, OrtCpuCheck  # noqa: F401 - part of a report

Verdict = Literal["runs_as_is", "runs_with_plan", "cannot_run"]
VERDICT_TEXT = {"runs_as_is": "runs as is", "runs_with_plan": "runs with a plan", "cannot_run": "cannot run"}

PLAN_FLAG = "[plan runtime] "  # prefix of a fallback flag about the best plan's own runtime

CoverageVerdict = Literal["full", "partial", "none", "fails", "unknown", "not_applicable"]


class OpIssue(Strict):
    op: str
    nodes: int = Field(ge=0, description="nodes of this op type that do not run on the runtime's unit")
    status: Literal["unsupported", "partial", "after_first_unsupported", "no_builtin"]
    reason: str


class RuntimeCoverage(Strict):
    """Operator coverage of one runtime of one device."""

    runtime: str
    provider: str
    unit: str
    unit_kind: str
    format: str
    profile_version: str | None = None
    is_plan_runtime: bool = False
    check: Literal["session", "data", "none"]
    op_level: Literal["onnx", "tflite", "none"] = "none"
    graph: Literal["exported", "static", "tflite_mapped", "tflite_converted", "none"] = "none"
    data_file: str | None = None
    data_title: str | None = None
    data_version: str | None = None
    source_url: str | None = None
    confidence: str | None = None
    version_note: str | None = None
    verdict: CoverageVerdict
    summary: str = Field(description="one line for people")
    op_types: int = 0
    op_types_supported: int = 0
    nodes: int = 0
    nodes_on_unit: int = 0
    issues: list[OpIssue] = Field(default_factory=list)
    on_unsupported: Literal["falls_back", "fails", "none"] = "none"
    fallback_to: str | None = None
    silent: bool = False
    fix: str | None = Field(None, description="what to change when the runtime refuses the graph")
    export_opset: int | None = Field(None, description="every op runs when the model is exported at this ONNX opset "
                                                       "(the refused ops are then decomposed into listed ones)")
    notes: list[str] = Field(default_factory=list)


class UnitPrecision(Strict):
    unit: str
    kind: str
    precisions: list[str]
    runtimes: list[str] = Field(default_factory=list, description="runtime/provider entries on this unit")
    used_by_plan: bool = False
    needed: str | None = Field(None, description="the precision the best plan computes in on this unit")
    supported: bool | None = None


class MemoryFit(Strict):
    kind: Literal["prediction"] = "prediction"
    weights_mb: float
    activations_mb: float
    kv_cache_mb: float = 0.0
    overhead_mb: float
    total_mb: float
    usable_mb: float
    fits: bool
    per_device: bool = Field(False, description="numbers are per accelerator (parallel layout)")
    basis: str = Field(description="which plan the numbers belong to")


class PlanLine(Strict):
    summary: str
    precision: str
    runtime: str
    provider: str
    unit: str
    format: str
    passes: list[str]
    layout: str
    quality_drop_est: float
    size_mb: float
    latency_ms: float
    kind: Literal["prediction"] = "prediction"


class LayerProfile(Strict):
    """A profiled measurement (`bench --profile-ops`) per ModelSpec layer: measured ms from the runtime's profiler,
    predicted ms from the cost model (planner.layer_times_ms), and the top ops; copied from the BenchResult."""

    kind: Literal["measured"] = "measured"
    available: bool
    unavailable_reason: str | None = None
    runtime: str
    iterations: int = 0
    layers: list[LayerTime] = Field(default_factory=list)
    top_ops: list[OpNodeTime] = Field(default_factory=list, description="the 10 nodes with the most time")
    layer_sum_ms: float | None = None
    other_ms: float | None = None
    node_sum_ms: float | None = None
    profiled_run_ms: float | None = Field(None, description="end-to-end run inside the profiler (its overhead in)")
    end_to_end_ms: float | None = Field(None, description="the clean p50 of the profiled inputs and batch")
    end_to_end_source: str | None = Field(None, description="'interleaved' with the profiled runs, or 'timed rounds'")
    layer_sum_over_end_to_end: float | None = None
    predicted_basis: str | None = None
    trace_file: str | None = None


GenerationMetricName = Literal["ttft_ms", "prefill_tokens_per_s", "decode_tokens_per_s", "peak_memory_mb"]


class GenerationMetric(Strict):
    """One decoder metric: the plan's prediction (P), the benchmark's measurement (M) and P/M."""

    name: GenerationMetricName
    label: str
    unit: str
    predicted: float | None = Field(None, description="kind: prediction (the plan's predicted.generation)")
    measured: float | None = Field(None, description="kind: measured (the BenchResult)")
    predicted_over_measured: float | None = None
    higher_is_better: bool = Field(description="tokens/s: P/M > 1 means slower than predicted; ms and MB: P/M < 1")
    note: str | None = Field(None, description="why P/M is missing, or what M includes that P does not")


class GenerationComparison(Strict):
    """A decoder benchmark's TTFT, prefill and decode tokens/s and peak memory against the plan's predictions."""

    kind: Literal["measured"] = "measured"
    engine: str
    prompt_tokens: int = Field(description="the measured prompt's length")
    new_tokens: int
    predicted_prompt_tokens: int | None = Field(None, description="the prompt the prediction is for")
    context: int | None = Field(None, description="the context the decode prediction is for")
    metrics: list[GenerationMetric]
    not_compared: str | None = Field(None, description="why no prediction is set beside the measurement")


class Measurement(Strict):
    kind: Literal["measured"] = "measured"
    file: str
    target: str
    host: str | None
    bundle_id: str
    precision: str | None
    runtime: str
    provider_used: str
    fell_back: bool
    fallback_reason: str | None = None
    p50_ms: float
    mean_ms: float
    iterations: int | None
    batch: int
    input_kind: str
    started_at: str
    predicted_ms: float | None = Field(None, description="the bundle plan's prediction for this run")
    predicted_over_measured: float | None = Field(None, description="<1: slower than predicted")
    comparison: str = Field(description="what the ratio compares")
    built_for: str | None = Field(None, description="device profile the measured bundle was built for")
    provider_requested: str | None = None
    best_plan_over_measured: float | None = Field(None, description="the device's best plan's prediction / this "
                                                                    "p50, only when this measures that plan")
    not_compared: str | None = Field(None, description="why this measurement is not compared with the device's best "
                                                       "plan (another plan or device); None when it is")
    other_runs: list[str] = Field(default_factory=list, description="the result's other batch/input runs")
    layer_profile: LayerProfile | None = Field(None, description="per-layer times when the run was profiled")
    generation: GenerationComparison | None = Field(None, description="decoder bundles: TTFT, tokens/s and peak "
                                                                      "memory, P and M")


class FleetSpread(Strict):
    """Several devices of one profile measured with the same bundle: how far apart their p50s are (newest result of
    each device; `edge-sdk bench --fleet`)."""

    kind: Literal["measured"] = "measured"
    bundle_id: str
    batch: int
    input_kind: str
    p50_ms_by_target: dict[str, float] = Field(description="each device's newest p50")
    p50_min_ms: float
    p50_median_ms: float
    p50_max_ms: float
    relative: float = Field(description="(max - min) / median")


class ParetoPoint(Strict):
    kind: Literal["prediction"] = "prediction"
    summary: str
    precision: str
    runtime: str
    latency_ms: float
    size_mb: float
    cosine_drop_est: float
    pruned: bool
    is_best: bool = False


class DeviceReport(Strict):
    device: str
    display_name: str
    device_class: str
    profile_confidence: str
    memory_usable_gb: float
    accelerator_count: int = 1
    verdict: Verdict
    reasons: list[str]
    best_plan: PlanLine | None = None
    as_is_plan: PlanLine | None = Field(None, description="the least-compressed plan that fits (objective quality)")
    memory: MemoryFit | None = None
    precision: list[UnitPrecision] = Field(default_factory=list)
    coverage: list[RuntimeCoverage] = Field(default_factory=list)
    fallback_flags: list[str] = Field(default_factory=list, description="ops leaving the accelerator, one per line")
    measured: list[Measurement] = Field(default_factory=list)
    spread: FleetSpread | None = Field(None, description="p50 spread over the devices of this profile, when results "
                                                         "of several devices measured the same bundle")
    pareto: list[ParetoPoint] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list, description="why alternatives were ruled out")
    runtime_versions: dict[str, str] = Field(default_factory=dict, description="runtime/provider -> version pinned "
                                                                               "by the profile")

    def headline_measurement(self):
        """The measurement to show beside the prediction: one of the best plan on this device (it has a P/M), newest
        first; else one comparable with its own bundle's prediction; else the newest."""
        if not self.measured:
            return None
        return max(self.measured, key=lambda m: (m.best_plan_over_measured is not None,
                                                 m.predicted_over_measured is not None, m.started_at))


class IgnoredResult(Strict):
    file: str
    reason: str


class OpDataSource(Strict):
    file: str
    title: str
    kind: str
    runtime_version: str | None
    source_url: str
    confidence: str
    checked: str


class CompatReport(Strict):
    schema_version: Literal[1] = 1
    kind: Literal["compat_report"] = "compat_report"
    created_at: str
    model: str = Field(description="model source as given")
    model_name: str
    family: str | None
    params: int
    batch: int
    seq_len: int
    devices_selected: str
    objective: str
    max_quality_drop: float
    graph: GraphOps
    ort_cpu: OrtCpuCheck | None = None
    devices: list[DeviceReport]
    pareto_device: str | None = None
    results_dir: str | None = None
    results_used: list[str] = Field(default_factory=list)
    results_ignored: list[IgnoredResult] = Field(default_factory=list)
    op_data: list[OpDataSource] = Field(default_factory=list)
    versions: dict[str, str] = Field(description="tool -> version used to make this report")
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    def device(self, name: str) -> DeviceReport:
        for d in self.devices:
            if d.device == name:
                return d
        raise KeyError(name)
