"""What a parallel run is asked to do (RunSpec) and what it measured (ParallelRunResult).

The RunSpec is the one file every rank reads, so all ranks agree on the model, the seed, the layout and the stage
boundaries without talking to each other. The result keeps measured numbers apart from the plan's predictions
(`predicted_*` fields are copied from the Plan so a reader sees both side by side).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from .base import Strict

Backend = Literal["gloo", "nccl"]


class RunSpec(Strict):
    """Everything a rank needs to build its share of the model and run it."""

    model: str = Field(description="minilm, a HF model directory or a transformers config.json")
    seed: int = Field(0, ge=0, description="random weights (configs) and input token ids are drawn from it")
    batch: int = Field(ge=1)
    seq_len: int = Field(ge=1)
    dp: int = Field(1, ge=1)
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    stages: list[tuple[int, int]] = Field(description="inclusive block range per pipeline stage")
    microbatches: int = Field(1, ge=1, description="GPipe microbatches per replica batch")
    backend: Backend = "gloo"
    warmup: int = Field(1, ge=0)
    iterations: int = Field(3, ge=1)
    timeout_s: float = Field(120.0, gt=0, description="collective timeout; the launcher's deadline is the same")

    @property
    def world_size(self) -> int:
        return self.dp * self.tp * self.pp


class RankReport(Strict):
    """One rank's measurements. Times are per forward over the replica's batch, one entry per timed iteration."""

    rank: int
    dp: int
    pp: int
    tp: int
    host: str
    device: str
    first_layer: int
    last_layer: int
    compute_ms: list[float] = Field(description="time inside this rank's stage forward (all microbatches); "
                                                "includes its tensor-parallel all-reduces")
    compute_cpu_ms: list[float] = Field(description="process CPU time of the same forwards: unlike wall time, not "
                                                    "inflated when the machine is shared (GPU runs: host time only)")
    step_ms: list[float] = Field(description="wall time of the whole forward on this rank (compute + waiting)")
    tp_allreduce_ms: list[float] = Field(default_factory=list, description="time in tensor-parallel all-reduces")
    tp_allreduces: int = Field(0, description="all-reduces per forward (all microbatches)")
    tp_allreduce_isolated_ms: float | None = Field(None, description="the same all-reduces with every rank "
                                                   "starting together: transfer cost without waiting for a peer")
    handoff_ms: float | None = Field(None, description="one-way send of the replica batch's activations to the "
                                                       "next stage (ping-pong / 2, median of 5)")
    gather_ms: float | None = Field(None, description="gathering the replicas' outputs (data parallel)")
    params_mb: float = Field(description="parameter bytes this rank holds (its stage, its tensor-parallel shard)")
    rss_before_model_mb: float = Field(description="resident memory after imports and rendezvous, before weights")
    peak_rss_mb: float = Field(description="peak resident memory of the process (ru_maxrss)")
    cuda_peak_mb: float | None = Field(None, description="torch.cuda.max_memory_allocated on GPU runs")


class StageReport(Strict):
    index: int
    first_layer: int
    last_layer: int
    ranks: list[int]
    predicted_ms: float | None = Field(None, description="from the plan (its device, batch and sequence)")
    measured_ms: float = Field(description="median over iterations of the slowest tensor-parallel rank's compute, "
                                           "averaged over data-parallel replicas")
    measured_cpu_ms: float = Field(description="the same, in process CPU time")
    predicted_share: float | None = Field(None, description="this stage's share of the predicted stage total")
    measured_share: float


class CommReport(Strict):
    predicted_ms: float = Field(description="plan.layout.communication_ms")
    measured_ms: float = Field(description="isolated tensor-parallel all-reduces on the critical path + pipeline "
                                           "hand-offs: the quantity the plan predicts")
    tp_allreduce_ms: float = Field(0.0, description="time in all-reduces inside the forwards (includes waiting for "
                                                    "the slowest tensor-parallel peer)")
    tp_allreduce_isolated_ms: float = Field(0.0, description="the same all-reduces timed alone (transfer only)")
    pp_handoff_ms: list[float] = Field(default_factory=list, description="one entry per stage boundary")
    dp_gather_ms: float = 0.0


class OutputCheck(Strict):
    shape: list[int]
    max_abs_diff: float
    tolerance: float
    reference: str
    ok: bool


class ParallelRunResult(Strict):
    kind: Literal["measurement"] = "measurement"
    model: str
    model_name: str
    family: str
    output_name: str
    backend: Backend
    world_size: int
    nnodes: int = 1
    dp: int
    tp: int
    pp: int
    batch: int
    seq_len: int
    microbatches: int
    iterations: int
    predicted_latency_ms: float | None = None
    predicted_device_mb: float | None = Field(None, description="the plan's memory per device (weights share + KV + "
                                                                "activations + runtime)")
    measured_latency_ms: float = Field(description="median over iterations of the slowest rank's step")
    stages: list[StageReport]
    ranks: list[RankReport]
    communication: CommReport
    output: OutputCheck | None = None
    notes: list[str] = Field(default_factory=list)
    wall_s: float = Field(description="launch to last rank's exit")
