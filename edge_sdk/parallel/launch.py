"""How the ranks are started, watched and stopped: torchrun-style worker processes with a deadline.

One subprocess per local rank (`python -m edge_sdk.parallel.worker RUN_DIR`) with the environment torchrun gives
its workers (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); on several nodes every
node runs the same command with its --node-rank. We do not use torchrun's elastic agent: it does not watch for a
hung rank (only the collective timeout ends the run, and then the first failure it reports is the peer that timed
out, not the rank that hung); torch.multiprocessing.spawn has no deadline of its own either, and plain worker
processes give each rank its own log. Each rank runs in its own session so the watchdog can kill it with everything
it started; the watchdog

- stops the run a short grace period after the first rank fails (the others get to write why they failed),
- stops it at the deadline (--timeout-s) whatever the ranks are doing,
- then names the rank that failed first (failure.diagnose), using exit codes, the ranks' error reports and their
  status boards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ParallelRunError
from .failure import RankOutcome, diagnose
from ..schemas.parallel import RunSpec
from .status import read as read_status

GRACE_S = 5.0
POLL_S = 0.05


@dataclass
class Launch:
    """Where this node's ranks come from and how they find rank 0."""

    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None  # None: a free port (single node only)
    threads: int | None = None      # CPU threads per rank; None: torchrun's rule (1 when several ranks share a node)


@dataclass
class LaunchOutcome:
    run_dir: Path
    reports: dict[int, dict] = field(default_factory=dict)
    output_path: Path | None = None
    wall_s: float = 0.0


def free_port(addr: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def launch(spec: RunSpec, where: Launch | None = None, *, deadline_s: float | None = None,
           run_dir: Path | None = None) -> LaunchOutcome:
    """Run this node's ranks to completion, or raise ParallelRunError naming the rank that failed first."""
    import json

    where = where or Launch()
    world = spec.world_size
    nproc = world // where.nnodes
    port = where.master_port or free_port(where.master_addr)
    run_dir = Path(run_dir or tempfile.mkdtemp(prefix="edge-sdk-parallel-"))
    (run_dir / "spec.json").write_text(spec.model_dump_json())
    deadline_s = spec.timeout_s if deadline_s is None else deadline_s
    procs: dict[int, subprocess.Popen] = {}
    logs = []
    start = time.time()
    try:
        for local in range(nproc):
            rank = where.node_rank * nproc + local
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(local), WORLD_SIZE=str(world),
                       LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK=str(where.node_rank),
                       MASTER_ADDR=where.master_addr, MASTER_PORT=str(port), EDGE_SDK_PARALLEL_RUN_DIR=str(run_dir))
            if where.threads is not None:
                env["OMP_NUM_THREADS"] = str(where.threads)
            elif nproc > 1:  # ranks sharing cores with idle-spinning OpenMP pools slow each other down badly
                env.setdefault("OMP_NUM_THREADS", "1")
            log = open(run_dir / f"rank{rank}.log", "wb")
            logs.append(log)
            procs[rank] = subprocess.Popen([sys.executable, "-m", "edge_sdk.parallel.worker", str(run_dir)],
                                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        exits, timed_out = _watch(procs, start + deadline_s)
        statuses = {r: read_status(run_dir, r) for r in procs}  # before the kill: what each rank was doing
    finally:
        for p in procs.values():
            _kill(p)
        for log in logs:
            log.close()
    wall = time.time() - start
    outcomes = []
    for r, p in procs.items():
        err_path = run_dir / f"rank{r}.error.json"
        err = json.loads(err_path.read_text()) if err_path.exists() else None
        rc, t = exits.get(r, (None, None))
        outcomes.append(RankOutcome(rank=r, exit_code=rc, exit_time=t, error=err, status=statuses.get(r)))
    if any(o.exit_code != 0 for o in outcomes):
        raise ParallelRunError(diagnose(outcomes, deadline_s=deadline_s, timed_out=timed_out, run_dir=run_dir))
    out = LaunchOutcome(run_dir=run_dir, wall_s=wall)
    for r in procs:
        out.reports[r] = json.loads((run_dir / f"rank{r}.json").read_text())
    if (run_dir / "output.pt").exists():
        out.output_path = run_dir / "output.pt"
    return out


def _watch(procs: dict[int, subprocess.Popen], deadline: float) -> tuple[dict[int, tuple[int, float]], bool]:
    """Poll until every rank exited, GRACE_S after the first failure, or the deadline.
    Returns (rank → (exit code, when), whether the deadline ended it)."""
    exits: dict[int, tuple[int, float]] = {}
    first_fail = None
    while True:
        now = time.time()
        for r, p in procs.items():
            if r not in exits:
                rc = p.poll()
                if rc is not None:
                    exits[r] = (rc, now)
                    if rc != 0 and first_fail is None:
                        first_fail = now
        if len(exits) == len(procs):
            return exits, False
        if first_fail is not None and (now - first_fail > GRACE_S or now >= deadline):
            return exits, False
        if now >= deadline:
            return exits, True
        time.sleep(POLL_S)


def _kill(p: subprocess.Popen) -> None:
    """Kill a rank and anything it started (its own session), then reap it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            p.kill()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        pass
