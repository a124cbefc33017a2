"""Reports for a ViT config and a 7B decoder config against every shipped device profile.

The ViT is exported for real (tiny config, random weights: structure only). The decoder is far too big to export,
so the report checks op types on a same-architecture stand-in and says so.
"""

from __future__ import annotations

import pytest

from edge_sdk.profiles import load_registry
from edge_sdk.reporting import build_report

ALL = sorted(load_registry([], include_env=False).names())


@pytest.fixture(scope="module")
def vit():
    return build_report("examples/configs/tiny-vit.json", devices="all", results_dir=None)


@pytest.fixture(scope="module")
def llama():
    return build_report("examples/configs/llama-7b.json", devices="all", results_dir=None,
                        pareto_device="a100-80gb-x8")


def test_vit_covers_every_profile_with_an_exported_graph(vit):
    assert sorted(d.device for d in vit.devices) == ALL
    assert vit.family == "vision"
    g = vit.graph
    assert g.status == "exported" and "random" in g.note and g.opset == 17
    ops = {o.op for o in g.ops}
    assert {"Conv", "MatMul", "Softmax", "LayerNormalization"} <= ops  # patch embedding + transformer blocks
    assert vit.ort_cpu.session_created
    assert sum(o.count for o in g.static_ops) < sum(o.count for o in g.ops)  # shape arithmetic folded away


def test_vit_every_device_has_a_verdict_reasons_and_coverage(vit):
    for d in vit.devices:
        assert d.verdict in ("runs_as_is", "runs_with_plan", "cannot_run")
        assert d.reasons and all(r.strip() for r in d.reasons)
        assert d.coverage and len(d.coverage) == len(load_registry([], include_env=False).profiles[d.device].runtimes)
        if d.verdict != "cannot_run":
            assert d.best_plan and d.best_plan.kind == "prediction" and d.best_plan.latency_ms > 0
            assert d.memory and d.memory.fits and d.memory.total_mb == pytest.approx(
                d.memory.weights_mb + d.memory.activations_mb + d.memory.kv_cache_mb + d.memory.overhead_mb, rel=1e-3)
            used = [u for u in d.precision if u.used_by_plan]
            assert len(used) == 1 and used[0].needed and used[0].supported


def test_vit_litert_ops_come_from_a_real_conversion(vit):
    """With the converter environment (scripts/setup-litert) the report converts the ViT and reads its builtins
    from the .tflite; without it, it maps them from ONNX and says why."""
    from edge_sdk.opgraph.tflite import litert_env_problem

    problem = litert_env_problem()
    g = vit.graph
    if problem is not None:
        print(f"\n[report] LiteRT converter unavailable, ops were mapped: {problem}")
        assert g.tflite_status == "mapped" and problem in g.tflite_note
        pytest.skip(f"no LiteRT converter environment: {problem}")
    assert g.tflite_status == "converted" and "litert-torch" in g.tflite_note
    ops = {o.op for o in g.tflite_ops}
    assert {"CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX"} <= ops
    host = vit.device("host")
    xnn = next(c for c in host.coverage if c.provider == "xnnpack")
    assert xnn.check == "session" and xnn.graph == "tflite_converted" and xnn.verdict == "full"
    tpu = next(c for c in vit.device("coral-dev-board").coverage if c.provider == "edgetpu")
    assert tpu.graph == "tflite_converted" and tpu.verdict in ("partial", "none")
    assert any(i.status == "unsupported" for i in tpu.issues)  # the first op the Edge TPU compiler cannot map


def test_vit_dla_flags_transformer_ops(vit):
    d = vit.device("jetson-agx-orin")
    dla = next(c for c in d.coverage if c.provider == "dla")
    assert dla.verdict == "partial" and dla.fallback_to == "gpu"
    bad = {i.op for i in dla.issues}
    assert {"LayerNormalization", "Erf"} <= bad
    assert "MatMul" in bad  # activation x activation products (attention) leave the DLA
    assert any("dla" in f for f in d.fallback_flags)


def test_decoder_is_checked_on_a_stand_in_and_says_so(llama):
    assert sorted(d.device for d in llama.devices) == ALL
    g = llama.graph
    assert g.status == "stand_in"
    assert "stand-in" in g.note and "counts are not" in g.note and "KV cache" in g.note
    ops = {o.op for o in g.ops}
    assert {"MatMul", "Softmax", "Sigmoid", "ReduceMean"} <= ops  # SwiGLU's SiLU, RMSNorm's mean
    assert llama.family == "decoder"


def test_decoder_verdicts_follow_memory(llama):
    v = {d.device: d for d in llama.devices}
    # 6.7 B parameters: the Coral (0.5 GB usable) cannot hold it; its reason is the planner's message
    coral = v["coral-dev-board"]
    assert coral.verdict == "cannot_run" and coral.reasons[0].startswith("no plan for llama-7b on coral-dev-board")
    assert coral.memory is not None and not coral.memory.fits and "no plan" in coral.memory.basis
    # an 8x H100 node runs it uncompressed
    assert v["h100-sxm-x8"].verdict == "runs_as_is"
    # an 8 GB Orin Nano only with int4 weights
    nano = v["jetson-orin-nano"]
    assert nano.verdict == "runs_with_plan" and nano.best_plan.precision == "int4_weight_only"
    assert any("no uncompressed" in r for r in nano.reasons)
    assert {"runs_as_is", "runs_with_plan", "cannot_run"} == {d.verdict for d in llama.devices}


def test_decoder_pareto_for_chosen_device(llama):
    assert llama.pareto_device == "a100-80gb-x8"
    pts = llama.device("a100-80gb-x8").pareto
    assert len(pts) >= 2 and sum(p.is_best for p in pts) == 1
    assert all(p.kind == "prediction" and p.latency_ms > 0 for p in pts)
