"""The planner's pass lists: static int8 weights are 7-bit (reduce_range) only where uint8×int8 products can saturate
— an x86 CPU without VNNI — and full 8-bit on VNNI/AMX x86, on ARM and on accelerators (real device profiles)."""

from __future__ import annotations

import pytest

from edge_sdk.modelspec import inspect_model
from edge_sdk.planner import plan_for_profile
from edge_sdk.planner.search import Constraints
from edge_sdk.planner.space import int8_reduce_range, runtime_units
from edge_sdk.profiles import load_registry
from edge_sdk.schemas.passes import QuantizeOnnxConfig


@pytest.fixture(scope="module")
def reg():
    return load_registry(host_profile="static")  # `host` = the shipped AVX2-without-VNNI VM, not this machine


@pytest.fixture(scope="module")
def minilm():
    return inspect_model("minilm", batch=1, seq_len=128)


@pytest.mark.parametrize("device, cpu_expected", [
    ("host", True),                 # x86-64 AVX2, no VNNI: vpmaddubsw can saturate → 7-bit weights
    ("t4", False),                  # x86-64 host CPU with avx512_vnni
    ("h100-sxm-x8", False),         # avx512_vnni + AMX
    ("raspberry-pi-5", False),      # ARM (NEON dotprod)
    ("jetson-orin-nano", False),    # ARM CPU; its GPU/DLA neither
])
def test_reduce_range_follows_the_isa(reg, device, cpu_expected):
    profile, _ = reg.resolve(device)
    targets, _ = runtime_units(profile)
    assert targets
    for t in targets:
        expected = cpu_expected if t.unit.kind == "cpu" else False
        assert int8_reduce_range(profile, t) is expected, (device, t.label)


@pytest.mark.parametrize("device, expected", [("host", True), ("raspberry-pi-5", False)])
def test_planned_quantize_passes_carry_it(reg, minilm, device, expected):
    profile, _ = reg.resolve(device)
    # onnxruntime's plans (on a host with VNNI an OpenVINO plan ranks first and has no quantize_onnx pass)
    planset = plan_for_profile(minilm, profile, model="minilm", top=5, constraints=Constraints(runtime="onnxruntime"))
    quant = [p for plan in [*planset.plans, *planset.pareto] for p in plan.passes if isinstance(p, QuantizeOnnxConfig)]
    assert quant, "no ONNX quantization planned at all"
    assert all(q.reduce_range is expected for q in quant)


def test_jetson_plans_never_quantize_to_7_bits(reg, minilm):
    profile, _ = reg.resolve("jetson-orin-nano")
    # onnxruntime's plans (on host an OpenVINO plan ranks first and has no quantize_onnx pass)
    planset = plan_for_profile(minilm, profile, model="minilm", top=5, constraints=Constraints(runtime="onnxruntime"))
    quant = [p for plan in [*planset.plans, *planset.pareto] for p in plan.passes if isinstance(p, QuantizeOnnxConfig)]
    assert quant and not any(q.reduce_range for q in quant)
