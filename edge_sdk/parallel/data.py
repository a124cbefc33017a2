"""How the batch is split over data-parallel replicas, and how their outputs come back to rank 0.

Each replica reads its own contiguous slice of the batch, as a data loader with a distributed sampler would: the
token ids are drawn from the run's seed, so replica d's first stage takes rows [d·B/dp, (d+1)·B/dp) without anyone
sending it data. The outputs are collected with a real collective: the last-stage rank of every replica (tensor-
parallel rank 0) joins `dist.gather` over the mesh's dp group, and the gathered batch goes to rank 0 with one
send/recv when rank 0 is not itself that last stage.
"""

from __future__ import annotations

import time


def all_input_ids(*, seed: int, batch: int, seq_len: int, vocab_size: int):
    """The whole batch of token ids (the reference runs on all of it). Id 0 is avoided: often the pad token."""
    import torch

    g = torch.Generator().manual_seed(seed + 7919)
    return torch.randint(1, max(vocab_size, 2), (batch, seq_len), generator=g)


def replica_input_ids(*, seed: int, batch: int, seq_len: int, vocab_size: int, dp: int, replica: int):
    ids = all_input_ids(seed=seed, batch=batch, seq_len=seq_len, vocab_size=vocab_size)
    per = batch // dp
    return ids[replica * per:(replica + 1) * per].contiguous()


def gather_outputs(out, *, rank: int, dp: int, dp_group, gather_dst: int, full_shape, dtype, device):
    """On the replicas' last stages (tp rank 0): gather into `gather_dst`, then hand the batch to rank 0.

    Every rank calls this; ranks that hold no output and are not rank 0 return (None, None) at once.
    Returns (full output on rank 0 else None, seconds spent in the gather on a gathering rank else None)."""
    import torch
    import torch.distributed as dist

    seconds = None
    full = None
    if out is not None:
        if dp > 1:
            dist.barrier(group=dp_group)  # time the gather, not the slowest replica's last iteration
        t0 = time.perf_counter()
        if dp > 1:
            parts = [torch.empty_like(out) for _ in range(dp)] if rank == gather_dst else None
            dist.gather(out.contiguous(), gather_list=parts, dst=gather_dst, group=dp_group)
            full = torch.cat(parts, dim=0) if parts is not None else None
        else:
            full = out
        seconds = time.perf_counter() - t0
        if rank == gather_dst and gather_dst != 0:
            dist.send(full.contiguous(), dst=0)
            full = None
    if rank == 0 and gather_dst != 0:
        full = torch.empty(full_shape, dtype=dtype, device=device)
        dist.recv(full, src=gather_dst)
    return (full if rank == 0 else None), seconds
