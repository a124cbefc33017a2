"""A rank that dies, raises or hangs fails the whole run within the deadline, with a message naming that rank;
bad layouts are one-line input errors (exit 2) before any process starts.

The faults are injected into real worker processes (EDGE_SDK_PARALLEL_FAULT), on real gloo process groups.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.errors import InputError
from edge_sdk.parallel import ParallelRunError, layout_plan, run_plan
from edge_sdk.parallel.failure import RankOutcome, diagnose, first_failure
from edge_sdk.parallel.status import RankStatus, StatusBoard, read

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
BERT, LLAMA = str(CONFIGS / "tiny-bert.json"), str(CONFIGS / "tiny-llama.json")


def failing_run(monkeypatch, model: str, layout: str, fault: str, timeout_s: float) -> tuple[str, float]:
    monkeypatch.setenv("EDGE_SDK_PARALLEL_FAULT", fault)
    plan = layout_plan(model, layout, batch=4, seq_len=16)
    t0 = time.monotonic()
    with pytest.raises(ParallelRunError) as exc:
        run_plan(plan, iterations=1, warmup=1, timeout_s=timeout_s)
    elapsed = time.monotonic() - t0
    msg = str(exc.value)
    m = re.search(r"logs: (\S+)/rank<N>\.log", msg)
    assert m and Path(m.group(1), "rank1.log").is_file(), msg  # the failing rank's log is kept for the user
    shutil.rmtree(m.group(1))
    return msg, elapsed


@pytest.mark.timeout(90)
def test_a_dying_rank_is_named_not_the_peer_that_lost_it(monkeypatch):
    msg, elapsed = failing_run(monkeypatch, LLAMA, "pp=2", "rank1:die", timeout_s=60)
    assert msg.startswith("parallel run failed: rank 1 died (exit code 13, no error report)"), msg
    assert "rank 0" in msg  # the peer's connection error is reported as a consequence, after it
    assert "\n" not in msg
    assert elapsed < 60


@pytest.mark.timeout(90)
def test_a_raising_rank_reports_its_exception(monkeypatch):
    msg, elapsed = failing_run(monkeypatch, BERT, "pp=2", "rank1:raise", timeout_s=60)
    assert msg.startswith("parallel run failed: rank 1 failed during"), msg
    assert "InjectedFault: injected fault at forward" in msg
    assert elapsed < 60


@pytest.mark.timeout(90)
def test_a_hanging_rank_fails_the_run_at_the_deadline(monkeypatch):
    deadline = 30.0
    msg, elapsed = failing_run(monkeypatch, BERT, "tp=2", "rank1:hang", timeout_s=deadline)
    assert msg.startswith("parallel run failed: rank 1 hung in"), msg
    assert "stopped at the deadline (--timeout-s 30)" in msg
    assert "rank 0 was waiting in 'comm:" in msg  # rank 0 is blocked in a collective, not blamed
    assert deadline - 1 <= elapsed < deadline + 15  # the watchdog, not a collective timeout, ended it


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


@pytest.mark.timeout(120)
def test_world_size_mismatch_is_exit_2_one_line():
    r = cli("run-parallel", "--model", LLAMA, "--layout", "pp=2", "--world-size", "3")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("error: --world-size 3 does not match the layout dp=1 × tp=1 × pp=2 = 2 "
                                "processes")
    assert "Traceback" not in r.stderr


@pytest.mark.timeout(120)
def test_world_size_mismatch_with_a_plan_file(tmp_path):
    from edge_sdk.planner import save_plan

    save_plan(layout_plan(BERT, "tp=2", batch=2, seq_len=8), tmp_path / "plan.json")
    r = cli("run-parallel", "--plan", str(tmp_path / "plan.json"), "--world-size", "4")
    assert r.returncode == 2 and "does not match the layout dp=1 × tp=2 × pp=1 = 2" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("layout,stages,msg", [
    ("tp=3", None, "tp=3 does not divide the model's attention heads (4)"),
    ("pp=3", None, "pp=3 stages but the model has only 2 layers"),
    ("dp=3", None, "--batch 4 is not divisible by dp=3"),
    ("pp=2", [(0, 1), (1, 1)], "stage 1 is layers [1, 1]"),
    ("pp=2", [(0, 0)], "1 stage(s) given but the layout has pp=2"),
    ("qq=2", None, "cannot read 'qq=2'"),
])
def test_bad_layouts_are_input_errors(layout, stages, msg):
    with pytest.raises(InputError, match=None) as exc:
        layout_plan(LLAMA, layout, batch=4, seq_len=16, stages=stages)
    assert msg in str(exc.value)


def test_nccl_without_gpus_is_an_input_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the nccl path is exercised by test_parallel_nccl.py")
    with pytest.raises(InputError, match="--backend nccl needs one GPU per local rank"):
        run_plan(layout_plan(LLAMA, "pp=2", batch=4, seq_len=16), backend="nccl")


# --- who is blamed: the diagnosis rules on recorded outcomes (no processes) ---

def outcome(rank, rc, t=None, err=None, state="compute", label="stage 0 forward"):
    return RankOutcome(rank=rank, exit_code=rc, exit_time=t, error=err,
                       status=RankStatus(state, label, time.time() - 5))


def test_a_silent_death_is_blamed_even_when_the_peer_exited_first():
    peer = outcome(0, 1, t=100.0, err={"type": "RuntimeError", "message": "Connection closed by peer", "comm": True,
                                       "time": 100.0})
    dead = outcome(1, -9, t=100.2, err=None)
    assert [o.rank for o in first_failure([peer, dead])] == [1]
    msg = diagnose([peer, dead], deadline_s=60, timed_out=False, run_dir=Path("/tmp/x"))
    assert msg.startswith("parallel run failed: rank 1 died (killed by SIGKILL, no error report)")


def test_a_rank_outside_any_collective_is_the_hung_one():
    waiting = outcome(0, None, state="comm", label="tp all-reduce blocks.0.attention.output.dense")
    stuck = outcome(1, None, state="compute", label="stage 0 forward")
    assert [o.rank for o in first_failure([waiting, stuck])] == [1]


def test_everyone_in_a_collective_is_called_a_deadlock():
    a = outcome(0, None, state="comm", label="recv")
    b = outcome(1, None, state="comm", label="recv")
    msg = diagnose([a, b], deadline_s=10, timed_out=True, run_dir=Path("/tmp/x"))
    assert "every rank was waiting in a collective" in msg and "--timeout-s 10" in msg


def test_status_board_round_trip(tmp_path):
    board = StatusBoard(tmp_path, 3)
    assert read(tmp_path, 3).state == "starting"
    board.comm("tp all-reduce blocks.1.mlp.down_proj")
    s = read(tmp_path, 3)
    assert (s.state, s.label) == ("comm", "tp all-reduce blocks.1.mlp.down_proj")
    assert read(tmp_path, 4) is None


def _mem_available_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("MemAvailable:")) / 1e6
    except (OSError, StopIteration):
        return 0.0


@pytest.mark.skipif(not 0 < _mem_available_gb() < 270, reason="needs Linux with less than 270 GB of free RAM (the "
                    "70B fp32 weights must not fit)")
def test_a_layout_whose_weights_cannot_fit_this_node_is_refused_before_launch():
    plan = layout_plan(str(CONFIGS / "llama-70b.json"), "tp=8", batch=1, seq_len=8)
    with pytest.raises(InputError, match=r"8 rank\(s\) here would need about 27\d\.\d GB of RAM"):
        run_plan(plan)
