"""Which rank does what: (dp, pp, tp) coordinates, stage boundaries, and whether a layout fits a model.

Ranks are laid out like `init_device_mesh(..., (dp, pp, tp))`: tensor-parallel peers are adjacent ranks (on one
node they share the fastest links), then pipeline stages, then replicas. Everything here is checked in the parent
before any process starts, so a layout that cannot work is a one-line InputError (exit 2), not a crashed rank.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Coords:
    dp: int
    pp: int
    tp: int


def coords(rank: int, tp: int, pp: int) -> Coords:
    return Coords(dp=rank // (pp * tp), pp=(rank // tp) % pp, tp=rank % tp)


def rank_of(dp: int, pp: int, tp: int, *, tp_size: int, pp_size: int) -> int:
    return (dp * pp_size + pp) * tp_size + tp


def parse_stages(text: str) -> list[tuple[int, int]]:
    """`0-0,1-5` (or `0:0,1:5`) → [(0, 0), (1, 5)]: inclusive block ranges, one per stage."""
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        m = re.fullmatch(r"(\d+)\s*[-:]\s*(\d+)", part) or re.fullmatch(r"(\d+)", part)
        if not m:
            raise InputError(f"--stages: cannot read {part!r}; expected inclusive layer ranges like 0-0,1-5")
        a = int(m.group(1))
        b = int(m.group(2)) if m.lastindex == 2 else a
        out.append((a, b))
    if not out:
        raise InputError("--stages: empty; expected inclusive layer ranges like 0-0,1-5")
    return out


def check_stages(stages: list[tuple[int, int]], pp: int, num_layers: int, where: str = "stages") -> None:
    """Stages must be pp contiguous, non-empty ranges covering blocks 0..num_layers-1 in order."""
    if len(stages) != pp:
        raise InputError(f"{where}: {len(stages)} stage(s) given but the layout has pp={pp}")
    expect = 0
    for i, (a, b) in enumerate(stages):
        if a != expect or b < a:
            raise InputError(f"{where}: stage {i} is layers [{a}, {b}]; stages must be contiguous, non-empty and "
                             f"start at layer {expect} (the model has layers 0..{num_layers - 1})")
        expect = b + 1
    if expect != num_layers:
        raise InputError(f"{where}: the stages end at layer {expect - 1} but the model has layers "
                         f"0..{num_layers - 1}")


def balanced_stages(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """Equal layer counts (the earlier stages take the remainder) when a plan gives no stage boundaries."""
    base, extra = divmod(num_layers, pp)
    out, start = [], 0
    for i in range(pp):
        n = base + (1 if i < extra else 0)
        out.append((start, start + n - 1))
        start += n
    return out


def default_microbatches(replica_batch: int, pp: int) -> int:
    """GPipe needs several microbatches to overlap stages; the largest that divides both the batch and pp."""
    return math.gcd(replica_batch, pp) if pp > 1 else 1


def check_layout(*, dp: int, tp: int, pp: int, info, batch: int, seq_len: int, microbatches: int,
                 model: str) -> None:
    """Raise InputError when the layout cannot run this model: tp must split heads, KV heads and the FFN evenly
    (each rank holds whole heads), pp cannot exceed the layers, dp must split the batch."""
    if info is None:
        raise InputError(f"{model}: not a recognised transformer stack; run-parallel needs a BERT-like encoder or "
                         f"a Llama-like decoder")
    if info.family not in ("encoder", "decoder"):
        raise InputError(f"{model}: run-parallel runs text encoders (BERT-like) and decoders (Llama-like); this "
                         f"model is {info.family}")
    for name, v in (("dp", dp), ("tp", tp), ("pp", pp)):
        if v < 1:
            raise InputError(f"layout: {name} must be ≥ 1, got {v}")
    if tp > 1:
        for what, n in (("attention heads", info.num_heads), ("KV heads", info.num_kv_heads),
                        ("FFN width", info.ffn_size)):
            if n % tp:
                raise InputError(f"layout: tp={tp} does not divide the model's {what} ({n}); each tensor-parallel "
                                 f"rank must hold whole heads and an equal FFN slice")
    if pp > info.num_layers:
        raise InputError(f"layout: pp={pp} stages but the model has only {info.num_layers} layers")
    if batch % dp:
        raise InputError(f"--batch {batch} is not divisible by dp={dp}: every replica takes an equal share")
    rep = batch // dp
    if rep % microbatches:
        raise InputError(f"--microbatches {microbatches} does not divide the replica batch {rep} "
                         f"(batch {batch} / dp {dp})")
    if info.max_positions and seq_len > info.max_positions:
        raise InputError(f"--seq-len {seq_len} exceeds the model's max_position_embeddings ({info.max_positions})")
