"""The decoder memory check before a deploy: what a decoder needs against what the device reports (pure logic; the
end-to-end refusal over a real SSH server is in test_decoder_build.py)."""

from __future__ import annotations

import pytest

from edge_sdk.profiles import load_registry
from edge_sdk.remote.preflight import MemoryNeed, memory_fit, uses_discrete_gpu

NEED = MemoryNeed(weights_bytes=900_000_000, kv_bytes=500_000_000, runtime_bytes=100_000_000, context=4096, batch=1)
GIB = 1 << 30


def test_need_adds_weights_kv_cache_and_runtime_and_says_so():
    assert NEED.total_bytes == 1_500_000_000
    assert NEED.describe() == ("1,500.0 MB (weights 900.0 MB + KV cache 500.0 MB at context 4096 + runtime 100.0 MB)")


def test_host_memory_decides_on_cpus_and_unified_memory():
    fits = {"usable_bytes": 2 * GIB, "cgroup_room_bytes": None, "gpus": []}
    assert memory_fit(NEED, fits, discrete_gpu=False)[:2] == (None, None)
    tight = {"usable_bytes": 1 * GIB, "cgroup_room_bytes": None, "gpus": []}
    problem, warning, have = memory_fit(NEED, tight, discrete_gpu=False)
    assert warning is None and "needs 1,500.0 MB" in problem and "1,073.7 MB available (MemAvailable)" in problem
    caged = {"usable_bytes": 1 * GIB, "cgroup_room_bytes": 1 * GIB, "gpus": []}
    assert "memory cgroup's limit" in memory_fit(NEED, caged, discrete_gpu=False)[0]
    unknown = memory_fit(NEED, {"usable_bytes": None}, discrete_gpu=False)
    assert unknown[0] is None and "not checked" in unknown[1]


def test_a_discrete_gpu_is_checked_against_its_free_memory_not_the_hosts():
    report = {"usable_bytes": 64 * GIB, "gpus": [{"index": 0, "name": "NVIDIA L4", "total_bytes": 24 * GIB,
                                                  "free_bytes": 1 * GIB}]}
    problem, _, have = memory_fit(NEED, report, discrete_gpu=True)
    assert problem and "free on its GPU (NVIDIA L4, nvidia-smi)" in have
    no_smi = memory_fit(NEED, {"usable_bytes": 64 * GIB, "gpus": []}, discrete_gpu=True)
    assert no_smi[0] is None and "nvidia-smi reported no GPU" in no_smi[1]


@pytest.mark.parametrize("device, unit, discrete", [("l4", "gpu", True), ("jetson-orin-nano", "gpu", False),
                                                     ("host", "cpu", False), ("l4", "no-such-unit", False)])
def test_which_memory_a_plan_uses(device, unit, discrete):
    prof, _ = load_registry().resolve(device)
    assert uses_discrete_gpu(prof, unit) is discrete


def test_the_device_reports_its_memory_in_the_shape_the_check_reads():
    from edge_sdk.device.probe import memory

    m = memory()
    assert m["mem_total_bytes"] > 0 and 0 < m["usable_bytes"] <= m["mem_total_bytes"]
    assert isinstance(m["gpus"], list)
