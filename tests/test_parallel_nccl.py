"""The NCCL path: one rank per GPU (torch.cuda.set_device(local_rank), an nccl process group, weights and timing on
the GPU). Skipped, with the reason printed, where torch sees no GPU; benchmarks/parallel_gpu_check.sh runs the same
on a lent GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
LLAMA = str(ROOT / "examples" / "configs" / "tiny-llama.json")

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="torch.cuda.is_available() is False on this machine: the nccl backend needs a "
                                      "GPU (run benchmarks/parallel_gpu_check.sh where there is one)")


@needs_gpu
@pytest.mark.timeout(180)
def test_nccl_world_size_one_on_a_gpu():
    r = subprocess.run([sys.executable, "-m", "edge_sdk", "run-parallel", "--model", LLAMA, "--layout", "single",
                        "--backend", "nccl", "--world-size", "1", "--batch", "4", "--seq-len", "32", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=170)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["backend"] == "nccl" and res["ranks"][0]["device"] == "cuda:0"
    assert res["ranks"][0]["cuda_peak_mb"] > 0
    assert res["output"]["ok"], res["output"]


@needs_gpu
@pytest.mark.timeout(180)
def test_nccl_tensor_parallel_on_two_gpus():
    if torch.cuda.device_count() < 2:
        pytest.skip(f"tp=2 on nccl needs 2 GPUs; torch sees {torch.cuda.device_count()}")
    r = subprocess.run([sys.executable, "-m", "edge_sdk", "run-parallel", "--model", LLAMA, "--layout", "tp=2",
                        "--backend", "nccl", "--batch", "4", "--seq-len", "32", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=170)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output"]["ok"]
