"""The planner: expected choices per profile, exact memory arithmetic, explanations, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.errors import InfeasibleError, InputError
from edge_sdk.modelspec import inspect_model
from edge_sdk.planner import Constraints, load_plan, plan_for_profile, priors, save_plan
from edge_sdk.planner.stages import balance_stages
from edge_sdk.planner.search import enumerate_candidates
from edge_sdk.profiles import load_registry

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"


@pytest.fixture(scope="module")
def reg():
    return load_registry(host_profile="static")  # `host` = the shipped AVX2-without-VNNI VM, not this machine


@pytest.fixture(scope="module")
def minilm():
    return inspect_model("minilm", batch=1, seq_len=128)


@pytest.fixture(scope="module")
def llama7b():
    return inspect_model(str(CONFIGS / "llama-7b.json"), batch=1, seq_len=2048)


@pytest.fixture(scope="module")
def llama70b():
    return inspect_model(str(CONFIGS / "llama-70b.json"), batch=1, seq_len=4096)


def best(spec, reg, device, **cons):
    prof, _ = reg.resolve(device)
    return plan_for_profile(spec, prof, model="m", constraints=Constraints(**cons)).plans[0]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_host_without_vnni_prefers_ort_dynamic_int8_to_openvino(minilm, reg):
    prof, _ = reg.resolve("host")
    top = plan_for_profile(minilm, prof, model="minilm").plans[0]
    # measured there: ORT dynamic int8 21.1 ms, OpenVINO fp32 29.1, OpenVINO + NNCF int8 37.5 (the VNNI case, where
    # OpenVINO int8 wins, is tests/test_host_profile.py's)
    assert (top.runtime.name, top.precision) == ("onnxruntime", "int8_dynamic")
    # a LiteRT plan is predicted a little faster at 128 tokens, but its fixed shapes pad every text
    assert "fastest once fixed shapes are counted of 3 runtimes" in top.rationale["runtime"]
    assert "openvino" in top.rationale["runtime"] and "litert" in top.rationale["runtime"]
    p = plan_for_profile(minilm, prof, model="minilm", constraints=Constraints(runtime="onnxruntime")).plans[0]
    assert p.precision == "int8_dynamic"
    assert (p.runtime.name, p.runtime.provider) == ("onnxruntime", "CPUExecutionProvider")
    q = p.pass_of("quantize_onnx")
    assert q is not None and q.mode == "dynamic_int8" and q.per_channel
    assert "VNNI" in p.rationale["precision"]  # no VNNI: int8 buys size more than speed
    assert p.predicted.memory_mb.total_mb < 16_000


def test_coral_gets_int8_and_says_why_not_float(minilm, reg):
    prof, _ = reg.resolve("coral")
    ps = plan_for_profile(minilm, prof, model="minilm")
    assert ps.plans[0].precision.startswith("int8")
    reasons = " ".join(r.reason for r in ps.rejected)
    assert "Edge TPU runs full-integer int8 only" in reasons
    assert "edgetpu" in ps.plans[0].rationale["runtime"]  # the Edge TPU was considered and its rejection explained


def test_t4_gets_fp16_or_int8_on_tensorrt(minilm, reg):
    p = best(minilm, reg, "t4")
    assert p.precision in ("fp16", "int8_static")
    assert p.runtime.name == "tensorrt" or p.runtime.provider == "TensorrtExecutionProvider"


def test_jetson_alias_and_jetson_nano_has_no_int8(minilm, reg):
    prof, note = reg.resolve("jetson")
    assert prof.name == "jetson-orin-nano" and "jetson-orin-nano" in note
    nano, _ = reg.resolve("jetson-nano")
    ps = plan_for_profile(minilm, nano, model="minilm")
    assert all(not p.precision.startswith("int8") or p.runtime.unit == "cpu" for p in ps.plans)


def test_7b_on_orin_nano_is_int4_or_explained(llama7b, reg):
    prof, _ = reg.resolve("jetson-orin-nano")
    try:
        p = plan_for_profile(llama7b, prof, model="7b").plans[0]
    except InfeasibleError as exc:
        assert "usable" in str(exc) and "needs" in str(exc)
        return
    assert p.precision == "int4_weight_only"
    assert p.predicted.memory_mb.total_mb <= prof.memory_usable_gb * 1000
    assert p.predicted.memory_mb.kv_cache_mb > 0


def test_7b_on_jetson_nano_refused_with_the_numbers(llama7b, reg):
    prof, _ = reg.resolve("jetson-nano")
    with pytest.raises(InfeasibleError) as ei:
        plan_for_profile(llama7b, prof, model="7b")
    msg = str(ei.value)
    assert "needs" in msg and f"{prof.memory_usable_gb * 1000 / 1000:.1f} GB usable" in msg
    assert ei.value.exit_code == 3


def test_70b_on_a100_node_is_parallel_with_per_gpu_memory(llama70b, reg):
    prof, _ = reg.resolve("a100-80gb-x8")
    p = best(llama70b, reg, "a100-80gb-x8")
    assert p.layout.tp * p.layout.pp > 1
    per = p.predicted.memory_mb.per_device_mb
    assert len(per) == p.layout.world_size and all(m <= prof.memory_usable_gb * 1000 for m in per)
    assert "tp=" in p.rationale["layout"]
    # 70B fp16 weights (138 GB) cannot fit one 80 GB GPU: the single-device fp16 candidate must fail memory.
    cands, _, _ = enumerate_candidates(llama70b, prof, Constraints())
    single_fp16 = [c for c in cands if c.precision == "fp16" and c.tp * c.pp * c.dp == 1 and c.target.unit.kind == "gpu"]
    assert single_fp16 and all("memory" in c.failed for c in single_fp16)


def test_weight_memory_is_exact_arithmetic(minilm, reg, llama7b):
    prof, _ = reg.resolve("host")
    cands, _, _ = enumerate_candidates(minilm, prof, Constraints(max_quality_drop=0.99))
    fp32 = next(c for c in cands if c.precision == "fp32" and not c.pruned and c.sparsity == "none")
    assert fp32.pred.weights_mb * 1e6 == pytest.approx(4 * minilm.total_params, rel=1e-12)
    # int8: every parameter 1 byte except LayerNorm weights/biases, which stay fp32
    norm_params = sum(l.params for l in minilm.layers if l.kind == "norm")
    int8 = next(c for c in cands if c.precision == "int8_dynamic" and not c.pruned and c.sparsity == "none"
                and c.target.runtime.name == "onnxruntime")
    assert int8.pred.weights_mb * 1e6 == pytest.approx(minilm.total_params - norm_params + 4 * norm_params, rel=1e-12)
    # fp16 on a GPU: 2 bytes each
    t4, _ = reg.resolve("t4")
    c16 = next(c for c in enumerate_candidates(llama7b, t4, Constraints(max_quality_drop=0.99))[0]
               if c.precision == "fp16" and c.dp * c.tp * c.pp == 1)
    assert c16.pred.weights_mb * 1e6 == pytest.approx(2 * llama7b.total_params, rel=1e-12)


def test_kv_cache_arithmetic(llama7b, reg):
    p = best(llama7b, reg, "h100-sxm-x8")
    t = llama7b.transformer
    expected = 2 * t.num_layers * t.num_kv_heads * t.head_dim * 2048 * 1 * 2 / 1e6
    assert p.predicted.memory_mb.kv_cache_mb == pytest.approx(expected, rel=1e-6)


def test_pruning_only_within_quality_budget(minilm, reg):
    prof, _ = reg.resolve("host")
    # without recovery the best plan does not prune (one-shot FFN -12.5 % costs more than 0.02; one-shot heads
    # -17 %, measured 0.985, fits only without int8 on top), and a pruned plan then has no distill pass
    none = plan_for_profile(minilm, prof, model="m", constraints=Constraints(recovery_minutes=0))
    assert none.plans[0].pass_of("structured_prune") is None
    assert "max-quality-drop" in none.plans[0].rationale["pruning"]
    for p in none.plans:
        prune = p.pass_of("structured_prune")
        assert prune is None or (prune.ffn_ratio == 0 and p.pass_of("distill") is None)
    assert priors.DEFAULT_RECOVERY_MINUTES == 0  # recovery is opt-in: the default plan does not prune
    default = plan_for_profile(minilm, prof, model="m", constraints=Constraints(recovery_minutes=15))
    for p in default.plans:  # whatever pruning is proposed fits the budget by the prior, with its recovery planned
        if p.pass_of("structured_prune") is not None:
            d = p.pass_of("distill")
            assert d is not None and d.max_seconds == pytest.approx(15 * 60)
        assert p.predicted.quality.cosine_drop <= 0.02
    loose = plan_for_profile(minilm, prof, model="m", constraints=Constraints(max_quality_drop=0.3,
                                                                               recovery_minutes=5))
    p = loose.plans[0]
    assert p.pass_of("structured_prune") is not None and p.pass_of("distill") is not None
    assert p.predicted.latency_ms < none.plans[0].predicted.latency_ms


def test_unstructured_sparsity_never_wins_and_2_4_needs_sparse_cores(minilm, reg):
    for dev in ("host", "t4", "jetson-agx-orin"):
        prof, _ = reg.resolve(dev)
        cands, _, _ = enumerate_candidates(minilm, prof, Constraints(max_quality_drop=0.5))
        uns = [c for c in cands if c.sparsity == "unstructured"]
        for c in uns:  # same speed and size as its dense twin
            twin = next(d for d in cands if d.sparsity == "none" and d.target is c.target
                        and d.precision == c.precision and not d.pruned and d.dp * d.tp * d.pp == 1)
            assert c.pred.latency_ms == pytest.approx(twin.pred.latency_ms)
            assert c.pred.size_mb == pytest.approx(twin.pred.size_mb)
        has24 = any(c.sparsity == "2:4" for c in cands)
        assert has24 == (dev == "jetson-agx-orin")


def test_objectives_change_the_choice(minilm, reg):
    prof, _ = reg.resolve("host")
    q = plan_for_profile(minilm, prof, model="m", objective="quality").plans[0]
    assert q.precision == "fp32"
    s = plan_for_profile(minilm, prof, model="m", objective="size").plans[0]
    assert s.predicted.size_mb <= q.predicted.size_mb / 3.9


def test_stage_balancing():
    stages = balance_stages(1.0, 10, 4, 0.0, 0.0)
    sizes = [b - a + 1 for a, b in stages]
    assert sum(sizes) == 10 and max(sizes) - min(sizes) <= 1
    assert stages[0][0] == 0 and stages[-1][1] == 9
    # heavy embeddings on the first stage → the first stage gets fewer blocks
    heavy = balance_stages(1.0, 10, 2, 3.0, 0.0)
    assert heavy[0][1] - heavy[0][0] + 1 < 5


def test_plan_json_round_trip_and_cli_output(tmp_path):
    out = tmp_path / "plan.json"
    r = run_cli("plan", "--device", "jetson", "--model", "minilm", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["device"] == "jetson-orin-nano"
    p0 = data["plans"][0]
    assert p0["passes"] and "latency_ms" in p0["predicted"] and "memory_mb" in p0["predicted"]
    assert p0["rationale"]["precision"]
    loaded = load_plan(out)
    assert loaded.device == "jetson-orin-nano" and loaded.passes
    save_plan(loaded, tmp_path / "again.json")
    assert load_plan(tmp_path / "again.json") == loaded


def test_devices_all_table():
    r = run_cli("plan", "--devices", "all")
    assert r.returncode == 0, r.stderr
    for name in ("host", "coral-dev-board", "t4", "h100-sxm-x8", "jetson-orin-nano", "sa8295p"):
        assert name in r.stdout


def test_unknown_knob_in_plan_file(tmp_path):
    r = run_cli("plan", "--device", "host", "-o", str(tmp_path / "p.json"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    data["passes"][0]["warp_factor"] = 9
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError) as ei:
        load_plan(bad)
    assert "warp_factor" in str(ei.value) and "bad.json" in str(ei.value)
    data["passes"][0].pop("warp_factor")
    data["passes"][0]["kind"] = "quantum_compress"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError) as ei:
        load_plan(bad)
    assert "passes.0" in str(ei.value)


@pytest.mark.parametrize("args, code, needle", [
    (["--device", "host", "--latency-ms", "-1"], 2, "--latency-ms"),
    (["--device", "host", "--max-quality-drop", "1.5"], 2, "--max-quality-drop"),
    (["--device", "host", "--objective", "vibes"], 2, "--objective"),
    (["--device", "jetsn"], 2, "jetson-orin-nano"),
    (["--device", "orin"], 2, "ambiguous"),
    (["--device", "host", "--devices", "all"], 2, "either"),
    # contradictory: tiny artifact AND almost no quality loss
    # below every int8 recipe's measured drop (OpenVINO int8 weights: 0.0006), so ≤ 30 MB cannot be met
    (["--device", "host", "--max-size-mb", "30", "--max-quality-drop", "0.0003"], 3, "--max-quality-drop"),
    (["--device", "host", "--latency-ms", "0.5"], 3, "--latency-ms"),
])
def test_bad_and_contradictory_input(args, code, needle):
    r = run_cli("plan", *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert needle in r.stderr
    if code == 3 and "--max-size-mb" in args:  # a conflict names both sides
        assert "--max-size-mb" in r.stderr
    assert "Traceback" not in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.strip()]) == 1
