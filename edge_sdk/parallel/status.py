"""What is each rank doing right now? A tiny memory-mapped status record per rank that the launcher can read.

When a run hangs, every rank but one is usually blocked inside a collective waiting for the one that is not. The
launcher tells them apart by what each rank last wrote here: 'comm' (inside a send/recv/all-reduce/gather) or
anything else (computing, building, starting). Writes are plain memory stores into a shared page (no system call),
cheap enough to mark every all-reduce.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

_FMT = "<d16s104s"  # time, state, label
SIZE = struct.calcsize(_FMT)
STATES = ("starting", "comm", "compute", "build", "fault", "done", "error")


def path_for(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / f"status.{rank}"


class StatusBoard:
    """The writer side, in a rank."""

    def __init__(self, run_dir: Path, rank: int):
        p = path_for(run_dir, rank)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, SIZE)
            self._mm = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self.last = ""
        self.set("starting", "imports")

    def set(self, state: str, label: str = "") -> None:
        self.last = f"{state}: {label}" if label else state
        self._mm[:SIZE] = struct.pack(_FMT, time.time(), state.encode()[:16], label.encode()[:104])

    def comm(self, label: str) -> None:
        self.set("comm", label)

    def compute(self, label: str) -> None:
        self.set("compute", label)


@dataclass
class RankStatus:
    state: str
    label: str
    since: float  # wall-clock time of the last update

    def describe(self) -> str:
        return f"{self.state}: {self.label}" if self.label else self.state


def read(run_dir: Path, rank: int) -> RankStatus | None:
    """The launcher side: the rank's last record, or None when it never started writing."""
    p = path_for(run_dir, rank)
    try:
        data = p.read_bytes()[:SIZE]
    except OSError:
        return None
    if len(data) < SIZE:
        return None
    t, state, label = struct.unpack(_FMT, data)
    return RankStatus(state.rstrip(b"\0").decode(errors="replace"), label.rstrip(b"\0").decode(errors="replace"), t)
