"""How a stage's blocks are split across tensor-parallel ranks (Megatron-style), with torch's own DTensor styles.

Attention q/k/v and the FFN up (and gate) projections are sharded column-wise (each rank computes whole heads /
an FFN slice), the attention output and FFN down projections row-wise (each rank's partial sums are all-reduced):
two all-reduces per block. `torch.distributed.tensor.parallel.parallelize_module` with `ColwiseParallel` /
`RowwiseParallel` does the sharding and the all-reduces; it works on gloo/CPU as well as NCCL. The attention
modules of transformers 5 reshape with `-1` heads, so they run unchanged on the local heads.

Written here: which linears get which style (from the module-path naming the ModelSpec walk already uses), the
placements for `weights.materialize` (so each rank draws only its slice), and forward hooks that time each
all-reduce and mark it on the rank's status board.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from torch import nn

from ..errors import InputError
from ..arch.naming import classify_linear

COLWISE_KINDS = ("attention_qkv", "ffn_up")
ROWWISE_KINDS = ("attention_out", "ffn_down")
# Fused projections cannot be split column-wise without splitting q, k and v (or gate and up) apart first.
FUSED_LEAVES = {"qkv_proj", "qkv", "c_attn", "query_key_value", "wqkv", "gate_up_proj", "in_proj"}


def tp_styles(stage) -> dict[str, str]:
    """Module path inside the stage → 'colwise' | 'rowwise' for every sharded linear in its blocks."""
    styles: dict[str, str] = {}
    for i, block in enumerate(stage.blocks):
        kinds: dict[str, int] = {}
        for path, mod in block.named_modules():
            leaf = path.rsplit(".", 1)[-1]
            if leaf in FUSED_LEAVES:
                raise InputError(f"tensor parallel: block {stage.first_layer + i} has a fused projection "
                                 f"'{path}'; only separate q/k/v and up/gate/down linears can be sharded")
            if not isinstance(mod, nn.Linear):
                continue
            kind = classify_linear(path, in_block=True)
            full = f"blocks.{i}.{path}"
            if kind in COLWISE_KINDS:
                styles[full] = "colwise"
            elif kind in ROWWISE_KINDS:
                styles[full] = "rowwise"
            kinds[kind] = kinds.get(kind, 0) + 1
        if not (kinds.get("attention_qkv", 0) >= 3 and kinds.get("attention_out") == 1
                and kinds.get("ffn_up", 0) >= 1 and kinds.get("ffn_down") == 1):
            raise InputError(f"tensor parallel: block {stage.first_layer + i} does not have the q/k/v, attention "
                             f"output, FFN up and FFN down linears it needs (found {kinds})")
    return styles


def placements(stage, styles: dict[str, str], mesh) -> dict[tuple[int, str], tuple[Any, list]]:
    """(id(linear), 'weight' | 'bias') → (mesh, placements) as ColwiseParallel / RowwiseParallel expect them."""
    from torch.distributed.tensor import Replicate, Shard

    out: dict[tuple[int, str], tuple[Any, list]] = {}
    for path, style in styles.items():
        mod = stage.get_submodule(path)
        out[(id(mod), "weight")] = (mesh, [Shard(0) if style == "colwise" else Shard(1)])
        if mod.bias is not None:
            out[(id(mod), "bias")] = (mesh, [Shard(0) if style == "colwise" else Replicate()])
    return out


class AllReduceTimer:
    """Accumulates the time of the row-wise outputs' all-reduces over one forward."""

    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds = 0.0
        self.count = 0
        self._t0 = 0.0
        self._sync = sync

    def reset(self) -> None:
        self.seconds, self.count = 0.0, 0


def parallelize(stage, styles: dict[str, str], mesh, timer: AllReduceTimer,
                on_comm: Callable[[str], None] | None = None,
                on_compute: Callable[[], None] | None = None) -> None:
    """Install the DTensor styles on the (already sliced) linears, then time each row-wise all-reduce.

    RowwiseParallel's output hook starts the all-reduce (asynchronously) and returns a local tensor; a hook
    prepended before it marks the start, one appended after it waits for the result and marks the end."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    plan = {p: ColwiseParallel() if s == "colwise" else RowwiseParallel() for p, s in styles.items()}
    parallelize_module(stage, mesh, plan)
    try:
        from torch.distributed._functional_collectives import AsyncCollectiveTensor
    except ImportError:  # pragma: no cover - older torch: the all-reduce is synchronous
        AsyncCollectiveTensor = ()  # type: ignore[assignment]

    for path, style in styles.items():
        if style != "rowwise":
            continue
        mod = stage.get_submodule(path)

        def start(_m, _inp, _out, path=path):
            if timer._sync is not None:
                timer._sync()
            if on_comm is not None:
                on_comm(f"tp all-reduce {path}")
            timer._t0 = time.perf_counter()

        def finish(_m, _inp, out):
            if AsyncCollectiveTensor and isinstance(out, AsyncCollectiveTensor):
                out = out.wait()
            if timer._sync is not None:
                timer._sync()
            timer.seconds += time.perf_counter() - timer._t0
            timer.count += 1
            if on_compute is not None:
                on_compute()
            return out

        mod.register_forward_hook(start, prepend=True)
        mod.register_forward_hook(finish)


def allreduce_ms(shape, dtype, device, *, group, repeats: int = 5) -> float:
    """One all-reduce of a block output's shape with every rank starting together (median of `repeats`): the
    transfer cost alone, which is what the cost model predicts. The all-reduces timed inside the forward also
    include waiting for the slowest tensor-parallel peer."""
    import statistics

    import torch
    import torch.distributed as dist

    buf = torch.ones(shape, dtype=dtype, device=device)
    times = []
    for _ in range(repeats + 1):
        dist.barrier(group=group)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        dist.all_reduce(buf, group=group)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:]) * 1e3
