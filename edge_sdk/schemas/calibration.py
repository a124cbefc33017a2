"""A calibration: efficiencies of the cost model measured on a device (or fitted to published results), so plans
rest on measurements instead of hand-written constants.

`edge-sdk calibrate --local | --target T` times microbenchmarks through each runtime the device can run (GEMMs at
model shapes per precision, memory bandwidth, per-op dispatch overhead, softmax/LayerNorm kernels) and fits
`Efficiency(compute, memory, per_op_overhead_us)` per compute unit × runtime × precision by least squares, keeping a
held-out share of the microbenchmarks to report the fit error. `calibrate --from-published PROFILE` fits the same
numbers to published latencies of whole models. `plan`, `report` and `bench` apply the newest calibration that
matches the device (fingerprint, runtime versions) and say so; one that does not match is never used silently.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field

from .base import Strict
from .profile import Efficiency, EfficiencyKey

# 2: whole exported layers fitted for onnxruntime, kernels timed in interleaved rounds (a version-1 file was fitted
# to a cost model that no longer exists: refused, `edge-sdk calibrate` again)
CALIBRATION_SCHEMA_VERSION = 2


class DeviceFingerprint(Strict):
    """What makes two machines the same for timing purposes. Frequencies and memory size are left out: they vary
    run to run on the same machine and are recorded with the measurements instead."""

    arch: str
    cpu_model: str | None = None
    cores: int | None = Field(None, ge=1, description="cores the runtime may use")
    isa_features: list[str] = Field(default_factory=list)
    accelerators: list[str] = Field(default_factory=list, description="GPU/NPU names where the runtime reports them")

    def key(self) -> str:
        data = self.model_dump(mode="json")
        data["isa_features"] = sorted(set(data["isa_features"]))
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.cpu_model or self.arch}, {self.cores or '?'} cores"


class Microbenchmark(Strict):
    """One timed kernel: what it computes (FLOPs, bytes moved, graph nodes) and how long it took."""

    name: str
    kind: Literal["gemm", "bandwidth", "overhead", "dispatch", "layer", "softmax", "layernorm", "attention", "gelu"]
    runtime: str
    provider: str
    precision: EfficiencyKey
    shape: dict[str, int] = Field(default_factory=dict)
    flops: float = Field(ge=0)
    bytes_moved: float = Field(ge=0)
    nodes: int = Field(ge=1, description="graph nodes dispatched per run")
    median_ms: float = Field(gt=0, description="the median of the per-round medians (see `rounds`)")
    rounds: int = Field(1, ge=1, description="interleaved rounds over the whole kernel list the kernel was timed in")
    p10_ms: float | None = None
    p90_ms: float | None = None
    iterations: int = Field(ge=1)
    held_out: bool = Field(False, description="not used for fitting; used to report the fit error")


class FittedEfficiency(Strict):
    """The cost model's efficiency for one compute unit × runtime × precision, and how well it fits."""

    unit: str
    runtime: str
    provider: str
    precision: EfficiencyKey
    efficiency: Efficiency
    points: int = Field(ge=0, description="measurements fitted")
    held_out: int = Field(0, ge=0, description="measurements kept back to test the fit")
    fit_error_median: float | None = Field(None, description="median |predicted/measured - 1| on held-out points")
    fit_error_max: float | None = None
    run_overhead_us: float | None = Field(None, ge=0, description="fixed cost of one runtime call (an empty graph's "
                                                                  "time), taken off each measured GEMM of the table "
                                                                  "(a model pays it once, not per layer)")
    table_only: bool = Field(False, description="the measurements became a GEMM table; `efficiency` is the "
                                                "profile's, not fitted (calibration/fit.py TABLE_ONLY)")
    note: str | None = None


class PublishedCheck(Strict):
    """A published whole-model latency and what the calibrated cost model predicts for it."""

    model: str
    batch: int
    seq_len: int
    precision: str
    runtime: str
    published_ms: float
    predicted_ms: float
    used_for_fit: bool
    leave_one_out_ms: float | None = Field(None, description="prediction from a fit without this result")
    reserved_for_validation: bool = False
    source: str | None = None


class Calibration(Strict):
    schema_version: Literal[2] = CALIBRATION_SCHEMA_VERSION
    kind: Literal["calibration"] = "calibration"
    profile: str = Field(description="device profile it calibrates")
    target: str = Field(description="'local', a deploy target name, or 'published'")
    source: Literal["microbenchmarks", "published"]
    fingerprint: DeviceFingerprint | None = Field(None, description="the measured machine; None when published")
    runtime_versions: dict[str, str] = Field(default_factory=dict, description="runtime name -> version measured")
    tool_versions: dict[str, str] = Field(default_factory=dict)
    threads: int | None = None
    memory_bandwidth_gbps: float | None = Field(None, gt=0, description="measured (STREAM-like triad/copy)")
    fits: list[FittedEfficiency] = Field(default_factory=list)
    measurements: list[Microbenchmark] = Field(default_factory=list)
    published: list[PublishedCheck] = Field(default_factory=list)
    seconds: float = 0.0
    created_at: str
    notes: list[str] = Field(default_factory=list)
