"""Multi-node is configuration: two launchers ("nodes") with --nnodes 2, their --node-rank and the same master
address/port form one world. Here both nodes are this machine (loopback), which is the same rendezvous."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LLAMA = str(ROOT / "examples" / "configs" / "tiny-llama.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)
def test_two_nodes_form_one_pipeline():
    """Two launchers side by side (threads here, two machines in real use), one rank each."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from edge_sdk.parallel import Launch, RunSpec
    from edge_sdk.parallel.launch import launch
    from edge_sdk.parallel.run import reference_check

    spec = RunSpec(model=LLAMA, batch=4, seq_len=16, pp=2, stages=[(0, 0), (1, 1)], microbatches=2, iterations=1,
                   timeout_s=90)
    port = free_port()
    with ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(launch, spec, Launch(nnodes=2, node_rank=n, master_addr="127.0.0.1", master_port=port))
                for n in (0, 1)]
        node0, node1 = (f.result(timeout=110) for f in futs)
    try:
        assert list(node0.reports) == [0] and list(node1.reports) == [1]
        assert node0.reports[0]["pp"] == 0 and node1.reports[1]["pp"] == 1
        assert node1.output_path is None  # rank 0, which collects the output, runs on node 0
        check = reference_check(spec, node0.output_path, 1e-5)
        assert check.ok and check.max_abs_diff <= 1e-5
    finally:
        shutil.rmtree(node0.run_dir, ignore_errors=True)
        shutil.rmtree(node1.run_dir, ignore_errors=True)


def test_multi_node_needs_an_explicit_port():
    from edge_sdk.errors import InputError
    from edge_sdk.parallel import Launch, layout_plan, run_plan

    with pytest.raises(InputError, match="--master-port is required with --nnodes > 1"):
        run_plan(layout_plan(LLAMA, "pp=2", batch=4, seq_len=8), where=Launch(nnodes=2, node_rank=0))
    with pytest.raises(InputError, match="--nnodes 3 does not divide the world size 2"):
        run_plan(layout_plan(LLAMA, "pp=2", batch=4, seq_len=8), where=Launch(nnodes=3, master_port=1))
