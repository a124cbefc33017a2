"""The BenchResult artifact: what one benchmark measured on one machine, next to what the plan predicted.

Every number here is measured on the device by the bundle's own device package (`edge_device bench`, source in
edge_sdk/device/bench.py), except the
`predicted_*` fields, which are copied from the bundle's plan so a reader sees both side by side.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from .base import Strict

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
        return args


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


class BatchResult(Strict):
    batch: int = Field(ge=1)
    inputs: str = Field(description="sample-input kind: real | padded")
    shapes: dict[str, list[int]] = Field(description="input name → shape fed to the model")
    iterations: int = Field(ge=1)
    latency_ms: LatencyStats
    throughput_per_s: float = Field(description="items (batch rows) per second over the timed iterations")
    wall_s: float = Field(description="wall time of the timed iterations")
    samples_ms: list[float] = Field(description="raw per-iteration latencies, in order")


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
    runner_version: str
    started_at: str
    finished_at: str
