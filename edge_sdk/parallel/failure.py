"""Why did a parallel run fail, and which rank failed first?

When one rank dies, its peers fail a moment later with "connection closed" from inside a collective; when one
rank hangs, its peers sit in a collective until the deadline. Reporting the first exit would blame a peer. So each
rank is classified by what it left behind:

- error: exited with its own exception (an error report that is not a communication failure),
- died: exited without an error report (os._exit, a signal, the OOM killer),
- hung: still running at the end, and its status board says it was not inside a collective,
- comm: exited with a communication error (a consequence of someone else),
- blocked: still running, inside a collective (waiting for someone else).

The first of error/died (by time) is the cause; else the hung ranks; else the first comm error; else everyone is
blocked in a collective (a deadlock, or a layout whose ranks disagree).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .status import RankStatus


@dataclass
class RankOutcome:
    rank: int
    exit_code: int | None        # None: still running when the launcher stopped the run
    exit_time: float | None
    error: dict | None           # the rank's error report (worker.py)
    status: RankStatus | None    # the rank's last status record

    @property
    def kind(self) -> str:
        if self.exit_code == 0:
            return "ok"
        if self.exit_code is None:
            return "blocked" if self.status is not None and self.status.state == "comm" else "hung"
        if self.error is None:
            return "died"
        return "comm" if self.error.get("comm") else "error"

    def when(self) -> float:
        if self.error is not None and self.error.get("time"):
            return float(self.error["time"])
        return self.exit_time or float("inf")

    def doing(self) -> str:
        return f"'{self.status.describe()}'" if self.status is not None else "'not started'"

    def describe(self, now: float) -> str:
        k = self.kind
        if k == "died":
            rc = self.exit_code or 0
            how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
            return f"rank {self.rank} died ({how}, no error report) during {self.doing()}"
        if k in ("error", "comm"):
            e = self.error or {}
            msg = str(e.get("message"))
            if k == "comm" and len(msg) > 120:
                msg = msg[:117] + "..."
            phase = f"'{e['phase']}'" if e.get("phase") else self.doing()
            return f"rank {self.rank} failed during {phase}: {e.get('type')}: {msg}"
        idle = f", no progress for {now - self.status.since:.1f} s" if self.status is not None else ""
        if k == "hung":
            return f"rank {self.rank} hung in {self.doing()}{idle}"
        return f"rank {self.rank} was waiting in {self.doing()}{idle}"


def first_failure(outcomes: list[RankOutcome]) -> list[RankOutcome]:
    """The rank(s) to blame, by the rules in the module docstring."""
    bad = [o for o in outcomes if o.kind in ("error", "died")]
    if bad:
        return [min(bad, key=lambda o: o.when())]
    hung = [o for o in outcomes if o.kind == "hung"]
    if hung:
        return hung
    comm = [o for o in outcomes if o.kind == "comm"]
    if comm:
        return [min(comm, key=lambda o: o.when())]
    return [o for o in outcomes if o.kind == "blocked"]


def diagnose(outcomes: list[RankOutcome], *, deadline_s: float, timed_out: bool, run_dir: Path) -> str:
    """One line: who failed first and how, what the others were doing, where the logs are."""
    now = time.time()
    culprits = first_failure(outcomes)
    names = {o.rank for o in culprits}
    head = "; ".join(o.describe(now) for o in culprits)
    if culprits and all(o.kind == "blocked" for o in culprits):
        head = "every rank was waiting in a collective (deadlock or ranks that disagree on the layout): " + head
    parts = [f"parallel run failed: {head}"]
    if timed_out:
        parts.append(f"stopped at the deadline (--timeout-s {deadline_s:g})")
    others = [o for o in sorted(outcomes, key=lambda o: o.rank) if o.rank not in names and o.kind != "ok"]
    if others:
        parts.append("then " + "; ".join(o.describe(now) for o in others[:3])
                     + (f" (+{len(others) - 3} more)" if len(others) > 3 else ""))
    parts.append(f"logs: {run_dir}/rank<N>.log")
    return "; ".join(parts)
