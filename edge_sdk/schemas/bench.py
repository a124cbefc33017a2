"""The BenchResult artifact: what one benchmark measured on one machine, next to what the plan predicted.

Every number here is measured on the device by the bundle's own device package (`edge_device bench`, source in
edge_sdk/device/bench.py), except the
`predicted_*` fields, which are copied from the bundle's plan so a reader sees both side by side.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from .base import Strict
from .plan import GenerationPrediction

InputChoice = Literal["auto", "real", "padded", "all"]


class BenchSettings(Strict):
    """How to benchmark: the runner's flags, validated once for the local and the remote path."""

    warmup: int = Field(10, ge=0, description="untimed runs before each timed series")
    iterations: int | None = Field(None, ge=1, description="timed runs per batch size (default 100)")
    duration_s: float | None = Field(None, gt=0, description="seconds of timed runs per batch size")
    batches: list[int] = Field(default_factory=lambda: [1], min_length=1)
    threads: int | None = Field(None, ge=1, description="runtime CPU threads; None = the runtime's default")
    inputs: InputChoice = Field("auto", description="sample-input kind; auto = padded when the bundle has it")
    artifact: str | None = Field(None, description="model file in the bundle; None = the plan's artifact")
    timeout_s: float = Field(600.0, gt=0, description="the runner stops itself after this; the caller kills it "
                                                      "a few seconds later")
    repeat: int = Field(1, ge=1, le=100, description="independent rounds, each with a fresh runtime session")
    profile_ops: bool = Field(False, description="one extra pass with the runtime's op profiler, after the timed "
                                                 "rounds: per-op times mapped to the model's layers")
    profile_iterations: int = Field(20, ge=1, le=10000, description="runs in the profiled pass")
    new_tokens: int | None = Field(None, ge=1, description="decoder bundles: tokens generated per generation "
                                                           "(None: the device's default, 32)")
    prompt_tokens: int | Literal["max"] | None = Field(
        None, description="decoder bundles: prompt length; the bundle's prompt repeated or cut to it ('max': the "
                          "context minus new_tokens; None: the bundle's prompt as built)")

    @field_validator("prompt_tokens")
    @classmethod
    def _prompt_tokens(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1 or 'max', got {v}")
        return v

    @model_validator(mode="after")
    def _one_mode(self) -> "BenchSettings":
        if self.iterations is not None and self.duration_s is not None:
            raise ValueError("give iterations or duration_s, not both")
        if self.iterations is None and self.duration_s is None:
            self.iterations = 100
        if any(b < 1 for b in self.batches):
            raise ValueError(f"batch sizes must be >= 1, got {self.batches}")
        return self

    @property
    def kill_after_s(self) -> float:
        """The runner stops itself at timeout_s; the caller kills it a little later (a runner stuck in native code)."""
        return self.timeout_s + min(5.0, 1.0 + 0.1 * self.timeout_s)

    def runner_args(self) -> list[str]:
        args = ["--warmup", str(self.warmup), "--batch", ",".join(str(b) for b in self.batches),
                "--inputs", self.inputs, "--deadline-s", f"{self.timeout_s:g}"]
        args += ["--duration", f"{self.duration_s:g}"] if self.duration_s else ["--iterations", str(self.iterations)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.artifact:
            args += ["--artifact", self.artifact]
        if self.repeat > 1:
            args += ["--repeat", str(self.repeat)]
        if self.profile_ops:
            args += ["--profile-ops", "--profile-iterations", str(self.profile_iterations)]
        if self.new_tokens is not None:
            args += ["--new-tokens", str(self.new_tokens)]
        if self.prompt_tokens is not None:
            args += ["--prompt-tokens", str(self.prompt_tokens)]
        return args


TOKEN_INPUTS = {"input_ids", "attention_mask", "token_type_ids", "position_ids"}


def input_label(kind: str, shapes: dict | None) -> str:
    """What a run's inputs were, for people: text runs are `real` (token lengths as they are) or `padded` (to the
    plan's seq_len); an image model's inputs have one fixed size, so both kinds are just `images`."""
    if shapes and not TOKEN_INPUTS & set(shapes):
        return "images"
    return kind


class LatencyStats(Strict):
    """Milliseconds over the timed iterations; percentiles by linear interpolation (numpy)."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    std: float


class RoundSpread(Strict):
    """How the medians of independent rounds (`--repeat K`, a fresh session each) differ."""

    p50s_ms: list[float] = Field(description="each round's p50, in order")
    min_ms: float
    median_ms: float
    max_ms: float
    relative: float | None = Field(description="(max - min) / median of the round p50s")


class BatchResult(Strict):
    batch: int = Field(ge=1)
    inputs: str = Field(description="sample-input kind: real | padded")
    shapes: dict[str, list[int]] = Field(description="input name → shape fed to the model")
    iterations: int = Field(ge=1)
    latency_ms: LatencyStats
    throughput_per_s: float = Field(description="items (batch rows) per second over the timed iterations")
    wall_s: float = Field(description="wall time of the timed iterations")
    samples_ms: list[float] = Field(description="raw per-iteration latencies, in order (every round's, with --repeat)")
    p50_ci95_ms: list[float] | None = Field(None, description="95 % confidence interval [low, high] of p50; None "
                                                             "below 6 samples")
    p50_ci_method: str | None = Field(None, description="how the interval was computed")
    rounds: RoundSpread | None = Field(None, description="per-round p50s and their spread (--repeat > 1)")


class SkippedRun(Strict):
    batch: int
    inputs: str
    reason: str


class TegraStats(Strict):
    """Jetson power and temperatures read with `tegrastats` during the benchmark (warm-up included)."""

    samples: int
    interval_ms: int
    power_rail: str | None = Field(description="the board's input rail: VDD_IN (Orin) or POM_5V_IN (Nano)")
    power_mw_mean: float | None
    power_mw_max: float | None
    rails_mw_mean: dict[str, float]
    temperatures_c_max: dict[str, float]


class ThermalZone(Strict):
    zone: str
    type: str | None
    temp_c: float | None


class ReferenceProbe(Strict):
    """The calibration suite's reference GEMM, timed on the device as `calibrate` times it, right before the timed
    rounds (`ms`) and after them (`after_ms`), against the time the calibration in use stored for it. A VM's
    neighbours do not show in its load average; they show here."""

    kernel: str | None = None
    ms: float | None = Field(None, description="median ms before the timed rounds")
    after_ms: float | None = Field(None, description="median ms after the timed rounds")
    reason: str | None = Field(None, description="why the device did not time it")
    calibrated_ms: float | None = Field(None, description="the same kernel in the calibration in use")
    ratio: float | None = Field(None, description="the faster of ms and after_ms / calibrated_ms: above 1 the "
                                                  "machine ran slower than when it was calibrated, and its "
                                                  "latencies with it")


class MachineState(Strict):
    """The machine before the run (and temperatures after it), read on the device from /sys and os.getloadavg.
    A field is None where the machine does not expose it (`notes` says which)."""

    cpu_count: int | None
    load_avg_before: list[float] | None = Field(description="1, 5 and 15 min load averages before the run")
    governors: dict[str, str] | None = Field(description="cpu -> cpufreq scaling governor")
    cur_mhz: dict[str, float] | None = Field(description="cpu -> current clock (scaling_cur_freq) before the run")
    min_mhz: dict[str, float] | None = None
    max_mhz: dict[str, float] | None = None
    thermal_before: list[ThermalZone] | None = None
    thermal_after: list[ThermalZone] | None = None
    notes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    reference_probe: ReferenceProbe | None = None


class OpNodeTime(Strict):
    """One node of the runtime's graph (after its fusions) in the profiled pass."""

    node: str
    op_type: str | None
    provider: str | None = None
    per_run_us: float = Field(description="kernel time per inference, µs (mean over the profiled runs)")
    calls_per_run: float
    share: float = Field(description="fraction of the summed kernel time")
    layer: str = Field(description="ModelSpec layer it belongs to, or '(other)'")


class LayerTime(Strict):
    """Measured (sum of its nodes) and predicted time of one ModelSpec layer; layer '(other)' holds the nodes no
    layer claims (shape arithmetic, output pooling)."""

    layer: str
    kind: str | None = None
    block: int | None = None
    nodes: int = Field(0, description="profiled nodes mapped to it")
    measured_ms: float
    predicted_ms: float | None = Field(None, description="costmodel.layer_times_ms for this layer")
    predicted_over_measured: float | None = None


def e2e_label(source: str | None) -> str:
    """How reports and the CLI name the end-to-end time an OpProfile's layer sum is compared with."""
    return "unprofiled, interleaved with the profiled runs" if source == "interleaved" else "unprofiled"


class OpProfile(Strict):
    """Per-op times from the runtime's own profiler, mapped to the model's layers (bench --profile-ops)."""

    runtime: str
    available: bool
    unavailable_reason: str | None = None
    inputs: str | None = Field(None, description="sample-input kind of the profiled pair")
    batch: int | None = None
    warmup: int = 0
    iterations: int = Field(0, description="profiled runs counted (warm-up runs are in the trace, not counted)")
    profiled_p50_ms: float | None = Field(None, description="p50 of the profiled runs (profiling slows them)")
    run_ms: float | None = Field(None, description="mean end-to-end run time inside the profiler (model_run)")
    node_sum_ms: float | None = Field(None, description="summed kernel time per run")
    layer_sum_ms: float | None = Field(None, description="summed time of the ModelSpec layers (without '(other)')")
    other_ms: float | None = None
    end_to_end_ms: float | None = Field(None, description="the clean (unprofiled) p50 of the same inputs and batch: "
                                                          "its runs interleaved with the profiled ones")
    end_to_end_source: Literal["interleaved", "timed rounds"] | None = Field(
        None, description="'interleaved': clean runs in blocks alternating with the profiled blocks (same machine "
                          "state); 'timed rounds': the bench's own p50 (a runner without interleaving)")
    timed_p50_ms: float | None = Field(None, description="the timed rounds' p50 of the same inputs and batch")
    layer_sum_over_end_to_end: float | None = Field(None, description="layer_sum_ms / end_to_end_ms")
    nodes: list[OpNodeTime] = Field(default_factory=list, description="most time first")
    layers: list[LayerTime] = Field(default_factory=list, description="in ModelSpec order, '(other)' last")
    predicted_basis: str | None = Field(None, description="what the per-layer predictions were computed with, or "
                                                          "why there are none")
    mapping_note: str | None = None
    trace_file: str | None = Field(None, description="the raw chrome-trace file, relative to the result JSON once "
                                                     "saved (on the device before)")
    note: str | None = None


class GenerationStats(Strict):
    """Decoder bundles: token generation measured on the device (greedy, EOS ignored, batch 1)."""

    engine: str = Field(description="onnxruntime-genai, or onnxruntime with edge-sdk's KV-cache loop")
    prompt_tokens: int
    new_tokens: int = Field(description="tokens generated per generation")
    generations: int
    tokens_timed: int = Field(description="decode steps timed (tokens after each generation's first)")
    ttft_ms: float = Field(description="median time to first token: prompt in → first generated token out")
    ttft_ms_samples: list[float]
    prefill_ms: float = Field(description="median time of the prompt's forward pass")
    setup_ms: float = Field(0.0, description="median per-request setup before the prompt goes in (genai Generator)")
    prefill_tokens_per_s: float | None = Field(description="prompt tokens / prefill time")
    decode_ms_per_token: float | None = Field(description="median latency of one decode step")
    decode_tokens_per_s: float | None = Field(description="timed decode tokens / their total time")
    power_mw_mean: float | None = Field(None, description="Jetson: mean board power (tegrastats' total rail) while "
                                                          "generating")
    energy_mj_per_token: float | None = Field(None, description="Jetson: mean board power × median decode time "
                                                                "per token")
    greedy: bool = True
    eos_ignored: bool = True
    first_tokens: list[int] = Field(default_factory=list, description="the first generation's first tokens")


class BenchResult(Strict):
    schema_version: Literal[1] = 1
    kind: Literal["measured"] = "measured"
    model: str | None = Field(description="model source the bundle was built from")
    model_name: str | None
    bundle_id: str = Field(description="content id of the bundle (edge_sdk.bundle.bundle_id over its files); also "
                                       "the name of its release directory on a device")
    bundle_path: str | None = Field(None, description="where the benchmarked bundle was: the directory or .edgepkg "
                                                      "given (local), or the release directory on the device")
    bundle_sha256: str = Field(description="sha256 of the bundle's manifest.json (it pins every file's sha256)")
    target: str = Field(description="deploy target name, or 'local'")
    host: str | None = Field(None, description="machine the runner ran on (SSH host, or this machine's name)")
    release: str | None = Field(None, description="name of the release benchmarked on the device (remote)")
    device: str | None = Field(description="device profile the bundle was built for")
    target_profile: str | None = Field(None, description="device profile of the target (remote)")
    artifact: str
    format: str | None
    precision: str | None
    runtime: str
    runtime_module: str = Field(description="Python module that ran the model (onnxruntime, ai_edge_litert, ...)")
    runtime_version: str | None
    provider_requested: str
    provider_used: str
    fell_back: bool = Field(description="the requested provider/delegate was not used")
    fallback_reason: str | None = None
    threads: int | None = Field(description="runtime threads asked for; None = the runtime's default")
    cpu_count: int | None
    cpu_model: str | None
    board: str | None = None
    arch: str
    os: str | None = None
    python_version: str
    numpy_version: str | None = None
    input_kind: str = Field(description="sample-input kinds measured, joined with '+'")
    warmup: int
    iterations: int | None = Field(description="timed iterations asked for per batch size")
    duration_s: float | None = Field(description="timed seconds asked for per batch size")
    latency_ms: LatencyStats = Field(description="the first batch result's statistics")
    throughput_per_s: float = Field(description="the first batch result's throughput")
    batches: list[BatchResult] = Field(min_length=1)
    skipped: list[SkippedRun] = Field(default_factory=list)
    model_load_ms: float
    first_inference_ms: float
    rss_before_load_mb: float | None = None
    peak_rss_mb: float | None = Field(description="peak resident memory of the runner process")
    peak_rss_source: str | None = Field(None, description="VmHWM (/proc) or ru_maxrss")
    ru_maxrss_mb: float | None = Field(None, description="getrusage's peak, reported beside VmHWM")
    tegrastats: TegraStats | None = None
    predicted_latency_ms: float | None = Field(None, description="the plan's prediction (kind: prediction)")
    predicted_for: str | None = Field(None, description="what the prediction is for (batch, seq_len, device)")
    compared_with: str | None = Field(None, description="which measured median it is compared with")
    predicted_over_measured: float | None = Field(None, description="predicted / measured p50; <1 = slower "
                                                                    "than predicted")
    predicted_generation: GenerationPrediction | None = Field(
        None, description="decoders: the plan's TTFT, prefill/decode tokens/s and peak memory prediction (re-costed "
                          "like predicted_latency_ms)")
    prediction_basis: str | None = Field(None, description="the bundle's build-time prediction, or the calibration "
                                                           "it was re-costed with")
    runner_version: str
    started_at: str
    finished_at: str
    repeat: int = Field(1, description="independent rounds measured (fresh session each)")
    machine: MachineState | None = Field(None, description="governor, clocks, temperatures and load (device side)")
    warnings: list[str] = Field(default_factory=list, description="why these numbers may not be reproducible")
    op_profile: OpProfile | None = None
    generation: GenerationStats | None = Field(None, description="decoder bundles: time to first token, tokens/s; "
                                                                 "`batches` then holds decode steps and prefills")

    # the raw runtime trace (chrome-trace JSON bytes) fetched with a profiled run; save_result writes it beside the
    # result. Not part of the JSON: traces are megabytes.
    _trace: bytes | None = PrivateAttr(None)
