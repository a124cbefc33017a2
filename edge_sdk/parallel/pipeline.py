"""How pipeline stages hand activations on: torch.distributed.pipelining's PipelineStage with a GPipe schedule.

`PipelineStage` + `ScheduleGPipe.eval()` (forward only) split the replica batch into microbatches, send each
microbatch's hidden states to the next stage and return the merged output on the last stage. It works on gloo/CPU
and NCCL, infers the activation shapes at run time, and takes any nn.Module as a stage, so the transformers blocks
run unchanged inside `stack.StageModule`. We do not use its tracer (`pipeline()` / `SplitPoint`): splitting by
hand on block boundaries is exact for transformers 5 models, whose forwards tracing does not always survive.

Written here: the hand-off measurement. The schedule's own sends and receives overlap with compute and waiting,
so the transfer time alone is measured afterwards by ping-pong of the same activation tensor between neighbouring
stages (one-way = round trip / 2), which is the quantity the cost model predicts per stage boundary.
"""

from __future__ import annotations

import statistics
import time


class PipelineRunner:
    """One rank's stage in a GPipe schedule over the ranks of its pipeline group."""

    def __init__(self, stage_module, *, stage_index: int, num_stages: int, device, group, microbatches: int):
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        self.stage = PipelineStage(stage_module, stage_index, num_stages, device, group=group)
        self.schedule = ScheduleGPipe(self.stage, n_microbatches=microbatches)
        self.is_first = stage_index == 0
        self.is_last = stage_index == num_stages - 1

    def forward(self, inputs):
        """The last stage returns the replica's output; the others return None."""
        import torch

        with torch.no_grad():
            out = self.schedule.eval(inputs) if self.is_first else self.schedule.eval()
        return out if self.is_last else None


def ping_handoff_ms(shape, dtype, device, *, prev_rank: int | None, next_rank: int | None,
                    stage_index: int, num_stages: int, group, repeats: int = 5) -> float | None:
    """One-way time to move an activation of `shape` to the next stage, measured on the sending stage.

    Boundaries are measured one after another (each stage is the receiver of one boundary and the sender of the
    next), separated by barriers so no measurement overlaps another."""
    import torch
    import torch.distributed as dist

    buf = torch.zeros(shape, dtype=dtype, device=device)
    mine = None
    for boundary in range(num_stages - 1):
        dist.barrier(group=group)
        if stage_index == boundary and next_rank is not None:
            times = []
            for _ in range(repeats + 1):
                _sync(device)
                t0 = time.perf_counter()
                dist.send(buf, dst=next_rank)
                dist.recv(buf, src=next_rank)
                _sync(device)
                times.append((time.perf_counter() - t0) / 2)
            mine = statistics.median(times[1:]) * 1e3
        elif stage_index == boundary + 1 and prev_rank is not None:
            for _ in range(repeats + 1):
                dist.recv(buf, src=prev_rank)
                dist.send(buf, dst=prev_rank)
    dist.barrier(group=group)
    return mine


def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize(device)
