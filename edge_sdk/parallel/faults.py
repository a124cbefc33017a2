"""Deliberate failures for testing the launcher's failure handling: EDGE_SDK_PARALLEL_FAULT=rank1:die.

Forms: `rank<N>:die` (os._exit(13), no error report, like a segfault or the OOM killer), `rank<N>:hang` (sleeps
forever outside any collective, like a stuck kernel), `rank<N>:raise` (a Python exception). An optional `@build`
fires before the model is built instead of at the start of the first timed forward. Several faults: comma-separated.
"""

from __future__ import annotations

import os
import re
import time

ENV = "EDGE_SDK_PARALLEL_FAULT"
DIE_EXIT_CODE = 13


class InjectedFault(RuntimeError):
    """Raised by `rank<N>:raise`."""


def fault_for(rank: int, spec: str | None = None) -> tuple[str, str] | None:
    """(action, phase) for this rank, or None. Malformed entries are ignored (this is a test hook, not a flag)."""
    spec = os.environ.get(ENV, "") if spec is None else spec
    for part in spec.split(","):
        m = re.fullmatch(r"\s*rank(\d+):(die|hang|raise)(?:@(build|forward))?\s*", part)
        if m and int(m.group(1)) == rank:
            return m.group(2), m.group(3) or "forward"
    return None


def maybe_fire(fault: tuple[str, str] | None, phase: str, board) -> None:
    if fault is None or fault[1] != phase:
        return
    action = fault[0]
    board.set("fault", f"injected {action} at {phase}")
    if action == "die":
        os._exit(DIE_EXIT_CODE)
    if action == "hang":
        while True:
            time.sleep(3600)
    raise InjectedFault(f"injected fault at {phase} ({ENV})")
