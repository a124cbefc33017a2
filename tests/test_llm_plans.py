"""LLM-scale plans (Llama 2 7B / 13B / 70B at a 4096-token context) on two 8-GPU nodes and an automotive SoC,
checked against exact arithmetic computed here from the config files — not from the cost model's own numbers.

    weights  = Σ params × bytes/param          fp16/bf16: 2; fp32: 4
                                                int8: 1 (GEMMs and embeddings), norms in float (2 on a GPU, 4 on a
                                                CPU); TensorRT/ORT mixed static int8 keeps the FFN down-projections
                                                in float (search.py: GELU/SiLU outliers)
                                                int4 weight-only: 0.5 + 2/32 per GEMM weight (LM head included),
                                                embeddings and norms in float
    KV cache = 2 (K and V) × layers × kv_heads × head_dim × context × batch × 2 bytes
                                                (fp16; 4 on a CPU in fp32 and dynamic int8)
    per GPU  = weights / (tp·pp) + KV / (dp·tp·pp) + activations / tp + runtime overhead (450 MB on a GPU)

Each test asserts the exact arithmetic; four of them caught cost-model bugs (KV cache not split by dp, the tp
all-reduce payload scaled twice, dp scaling weight reads, tp splitting KV heads unevenly), since fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.errors import InfeasibleError
from edge_sdk.modelspec import inspect_model
from edge_sdk.planner import plan_for_profile
from edge_sdk.planner.costmodel import COMM_EFFICIENCY, COMM_LATENCY_US, RUNTIME_OVERHEAD_MB, block_costs, predict
from edge_sdk.planner.search import Constraints, enumerate_candidates
from edge_sdk.profiles import load_registry

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
CONTEXT = 4096          # Llama 2's context length
MODELS = ("llama-7b", "llama-13b", "llama-70b")
NODES = ("a100-80gb-x8", "h100-sxm-x8")
MB = 1e6


def arch(name: str) -> dict:
    """Parameter groups of a Llama config, counted by hand from its fields."""
    c = json.loads((CONFIGS / f"{name}.json").read_text())
    h, f, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads", heads)
    hd = h // heads
    attn = h * h + 2 * h * kv * hd + h * h      # q, k, v, o
    ffn_up = 2 * h * f                           # gate and up (SwiGLU)
    ffn_down = h * f
    assert not c.get("tie_word_embeddings", False)
    return {"layers": L, "kv_heads": kv, "head_dim": hd, "hidden": h,
            "gemm": L * (attn + ffn_up + ffn_down) + V * h,   # blocks + LM head
            "ffn_down": L * ffn_down, "embed": V * h, "norms": (2 * L + 1) * h}


def total_params(a: dict) -> int:
    return a["gemm"] + a["embed"] + a["norms"]


def weight_bytes(a: dict, precision: str, unit_kind: str, mixed_int8: bool) -> float:
    flt = 4.0 if unit_kind == "cpu" else 2.0
    if precision == "fp32":
        return 4.0 * total_params(a)
    if precision in ("fp16", "bf16"):
        return 2.0 * total_params(a)
    if precision in ("int8_static", "int8_dynamic"):
        down = a["ffn_down"] if mixed_int8 else 0
        return 1.0 * (a["gemm"] - down + a["embed"]) + flt * (down + a["norms"])
    if precision == "int4_weight_only":
        return (0.5 + 2 / 32) * a["gemm"] + flt * (a["embed"] + a["norms"])
    raise AssertionError(precision)


def kv_bytes(a: dict, precision: str, unit_kind: str, batch: int = 1, context: int = CONTEXT) -> float:
    el = 4.0 if unit_kind == "cpu" and precision in ("fp32", "int8_dynamic") else 2.0
    return 2 * a["layers"] * a["kv_heads"] * a["head_dim"] * context * batch * el


@pytest.fixture(scope="module")
def reg():
    return load_registry()


@pytest.fixture(scope="module")
def specs():
    return {m: inspect_model(str(CONFIGS / f"{m}.json"), batch=1, seq_len=CONTEXT) for m in MODELS}


@pytest.fixture(scope="module")
def plansets(specs, reg):
    out = {}
    for m in MODELS:
        for d in NODES + ("drive-agx-orin",):
            prof, _ = reg.resolve(d)
            try:
                out[m, d] = plan_for_profile(specs[m], prof, model=m)
            except InfeasibleError as exc:
                out[m, d] = exc
    return out


def check_memory(plan, a: dict, profile) -> None:
    """Every memory number of a plan, against the arithmetic in the module docstring."""
    unit = profile.unit(plan.runtime.unit)
    mixed = plan.precision == "int8_static" and plan.runtime.provider in (
        "CPUExecutionProvider", "TensorrtExecutionProvider", "CUDAExecutionProvider") or (
        plan.precision == "int8_static" and plan.runtime.name == "tensorrt" and unit.kind == "gpu")
    m = plan.predicted.memory_mb
    w = weight_bytes(a, plan.precision, unit.kind, mixed)
    kv = kv_bytes(a, plan.precision, unit.kind)
    lay = plan.layout
    shards = lay.tp * lay.pp
    assert m.weights_mb == pytest.approx(w / MB, abs=2e-3), plan.summary()
    assert m.kv_cache_mb == pytest.approx(kv / MB, abs=2e-3), plan.summary()
    assert m.overhead_mb == RUNTIME_OVERHEAD_MB[unit.kind]
    # one generated token's activations: small next to weights and KV (the cost model's 3 × peak op output)
    assert m.activations_mb < 0.001 * (w + kv) / MB
    per_device = w / shards / MB + kv / shards / MB + m.activations_mb / lay.tp + m.overhead_mb
    assert m.total_mb == pytest.approx(per_device, abs=2e-3), plan.summary()
    assert len(m.per_device_mb) == lay.dp * lay.tp * lay.pp
    assert m.total_mb <= profile.memory_usable_gb * 1000


def test_config_arithmetic_matches_transformers_param_count(specs):
    for m in MODELS:
        assert total_params(arch(m)) == sum(layer.params for layer in specs[m].layers), m
    assert total_params(arch("llama-70b")) == 68_976_648_192


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("device", NODES)
def test_eight_gpu_nodes_shard_llamas_tensor_parallel(model, device, plansets, reg):
    ps = plansets[model, device]
    prof, _ = reg.resolve(device)
    best = ps.plans[0]
    # one token at a time: pipeline stages run one after another (no latency gain); tp=8 splits every GEMM and
    # the weight reads 8 ways over NVLink, so the latency objective picks it
    assert (best.layout.dp, best.layout.tp, best.layout.pp) == (1, 8, 1)
    why = best.rationale["layout"]
    assert why.startswith("dp=1 × tp=8 × pp=1: ") and "on one accelerator" in why
    assert f"over {prof.interconnect_bandwidth_gbps:g} GB/s" in why
    single_ms = float(why.split(" ms vs ")[1].split(" ms")[0])
    assert best.predicted.latency_ms < single_ms
    a = arch(model)
    for plan in [*ps.plans, *ps.pareto]:   # int4, int8, fp16, fp32, CPU int8 — each checked exactly
        check_memory(plan, a, prof)


def test_llama70b_fp16_needs_at_least_two_gpus(specs, reg):
    """fp16 70B weights are 138 GB: one 80 GB GPU cannot hold them; tp=2 can (69 GB + KV/2 + 450 MB each)."""
    prof, _ = reg.resolve("h100-sxm-x8")
    a = arch("llama-70b")
    cands, _, _ = enumerate_candidates(specs["llama-70b"], prof, Constraints())
    fp16 = {(c.dp, c.tp, c.pp): c for c in cands if c.precision == "fp16" and c.target.runtime.name == "tensorrt"
            and c.sparsity == "none"}
    w, kv = weight_bytes(a, "fp16", "gpu", False), kv_bytes(a, "fp16", "gpu")
    assert w / MB == pytest.approx(137_953.296384, abs=1e-3)
    assert "memory" in fp16[1, 1, 1].failed
    assert fp16[1, 1, 1].pred.total_mb > prof.memory_usable_gb * 1000
    two = fp16[1, 2, 1].pred
    assert "memory" not in fp16[1, 2, 1].failed
    assert two.total_mb == pytest.approx(w / 2 / MB + kv / 2 / MB + two.activations_mb / 2 + 450, abs=2e-3)


@pytest.mark.parametrize("model", ["llama-7b", "llama-13b"])
def test_drive_orin_runs_7b_and_13b_on_its_one_gpu_in_int4(model, plansets, reg):
    prof, _ = reg.resolve("drive-agx-orin")
    best = plansets[model, "drive-agx-orin"].plans[0]
    assert best.layout.is_single and prof.accelerator_count == 1
    assert best.precision == "int4_weight_only" and best.runtime.unit == "gpu"
    check_memory(best, arch(model), prof)
    assert best.rationale["layout"] == f"single device: needs {best.predicted.memory_mb.total_mb / 1000:.1f} GB of " \
                                       f"{prof.memory_usable_gb:.1f} GB usable"


def test_drive_orin_cannot_hold_llama70b(plansets, reg):
    prof, _ = reg.resolve("drive-agx-orin")
    exc = plansets["llama-70b", "drive-agx-orin"]
    assert isinstance(exc, InfeasibleError)
    a = arch("llama-70b")
    # the smallest it could be: int4 weights + fp16 KV + runtime (activations < 2 MB)
    need_gb = (weight_bytes(a, "int4_weight_only", "gpu", False) + kv_bytes(a, "int4_weight_only", "gpu")) / 1e9 + 0.45
    assert need_gb == pytest.approx(40.97, abs=0.01)
    assert f"needs {need_gb:.1f} GB at best (int4_weight_only tensorrt/gpu)" in str(exc)
    assert "28.0 GB usable" in str(exc)


# --- the cost model against the arithmetic where they disagree (bugs, reported to the planner's owner) ---

def _h100(reg):
    prof, _ = reg.resolve("h100-sxm-x8")
    rt = next(r for r in prof.runtimes if r.name == "tensorrt")
    return prof, rt, prof.unit(rt.unit)


def test_kv_cache_per_gpu_is_split_by_data_parallel(reg):
    prof, rt, unit = _h100(reg)
    spec = inspect_model(str(CONFIGS / "llama-7b.json"), batch=8, seq_len=CONTEXT)
    costs = block_costs(spec, prof, unit, "fp16", decode=True, runtime=rt)
    p = predict(spec, prof, rt, unit, "fp16", costs, dp=2, decode=True)
    a = arch("llama-7b")
    want = weight_bytes(a, "fp16", "gpu", False) / MB + kv_bytes(a, "fp16", "gpu", batch=8) / 2 / MB \
        + p.activations_mb + 450
    assert p.total_mb == pytest.approx(want, rel=1e-3)


def test_tp_allreduce_time_uses_the_real_payload(reg):
    prof, rt, unit = _h100(reg)
    spec = inspect_model(str(CONFIGS / "bert-base.json"), batch=32, seq_len=512)
    costs = block_costs(spec, prof, unit, "fp16", runtime=rt)
    p = predict(spec, prof, rt, unit, "fp16", costs, tp=2)
    payload = 32 * 512 * 768 * 2
    link = prof.interconnect_bandwidth_gbps * 1e9 * COMM_EFFICIENCY
    per_ar = 2 * (2 - 1) / 2 * payload / link + COMM_LATENCY_US * 1e-6
    assert p.comm_ms == pytest.approx(2 * 12 * per_ar * 1e3, rel=1e-3)


def test_a_data_parallel_replica_still_reads_all_weights_per_token(reg):
    prof, rt, unit = _h100(reg)
    spec = inspect_model(str(CONFIGS / "llama-7b.json"), batch=2, seq_len=128)
    costs = block_costs(spec, prof, unit, "fp16", decode=True, runtime=rt)
    p = predict(spec, prof, rt, unit, "fp16", costs, dp=2, decode=True)
    eff = unit.efficiency.memory if unit.efficiency else 0.7
    read_weights_ms = p.weights_mb * MB / (prof.memory_bandwidth_gbps * 1e9 * eff) * 1e3
    assert p.latency_ms >= read_weights_ms


def test_layouts_only_split_whole_kv_heads(reg, tmp_path):
    from edge_sdk.planner.space import layouts

    cfg = json.loads((CONFIGS / "tiny-llama.json").read_text())
    cfg.update(hidden_size=768, num_attention_heads=12, num_key_value_heads=6, intermediate_size=1024)
    (tmp_path / "gqa.json").write_text(json.dumps(cfg))
    spec = inspect_model(str(tmp_path / "gqa.json"), seq_len=64)
    prof, _ = reg.resolve("h100-sxm-x8")
    assert all(6 % tp == 0 for _, tp, _ in layouts(prof, spec, 1))
