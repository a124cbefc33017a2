"""Decoder plans: only runtimes `build` can make are planned on one device, the plans predict what LLM users compare
(TTFT at a stated prompt length, prefill and decode tokens/s, peak memory), and a Jetson plan builds.

The predictions are checked against the cost model run by hand (block_costs + predict at the prompt length) and
against a second inspection of the model at the prompt length — not against the planner's own numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import InfeasibleError
from edge_sdk.modelspec import inspect_model
from edge_sdk.planner import Constraints, plan_for_profile
from edge_sdk.planner.costmodel import GRAPH_OPS_PER_SPEC_OP, block_costs, efficiency, predict
from edge_sdk.planner.generation import spec_at_seq_len
from edge_sdk.planner.search import enumerate_candidates
from edge_sdk.profiles import load_registry
from edge_sdk.schemas.plan import GenerationPrediction, bench_prompt_tokens

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "configs" / "tiny-llama.json"


@pytest.fixture(scope="module")
def reg():
    return load_registry()


@pytest.fixture(scope="module")
def tiny():
    return inspect_model(str(TINY), seq_len=128)


@pytest.mark.parametrize("prompt", [1, 32, 100])
def test_prefill_spec_is_the_model_inspected_at_the_prompt_length(tiny, prompt):
    want = inspect_model(str(TINY), seq_len=prompt)
    got = spec_at_seq_len(tiny, prompt)
    assert got.seq_len == prompt and got.total_flops == want.total_flops
    fields = ("name", "kind", "flops", "activation_bytes", "input_bytes", "tokens", "params")
    assert [[getattr(l, f) for f in fields] for l in got.layers] == [[getattr(l, f) for f in fields]
                                                                     for l in want.layers]


def test_host_plan_is_onnxruntime_genai_with_generation_predictions(tiny, reg):
    prof, _ = reg.resolve("host")
    ps = plan_for_profile(tiny, prof, model=str(TINY))
    for p in ps.plans:  # every ranked plan is one `build` can make
        assert (p.runtime.name, p.runtime.provider) == ("onnxruntime", "CPUExecutionProvider"), p.summary()
        assert p.pass_of("export_genai").execution_provider == "cpu"
    best = ps.plans[0]
    assert "onnxruntime-genai" in best.rationale["runtime"] and "openvino/CPU" in best.rationale["runtime"]
    assert any(r.reason.startswith("single-device decoder plans `edge-sdk build` cannot make")
               and "openvino/CPU" in " ".join(r.alternatives) for r in ps.rejected)
    g = best.predicted.generation
    assert g is not None and g.kind == "prediction"
    assert g.prompt_tokens == bench_prompt_tokens(128) == 32 and g.context == 128
    # decode: the plan's per-token latency; prefill: the cost model over the 32-token prompt, run here by hand
    assert g.decode_ms_per_token == pytest.approx(best.predicted.latency_ms, abs=1e-4)
    assert g.decode_tokens_per_s == pytest.approx(1000 / best.predicted.latency_ms, rel=1e-3)
    rt = next(r for r in prof.runtimes if r.name == "onnxruntime" and r.provider == "CPUExecutionProvider")
    spec32 = inspect_model(str(TINY), seq_len=32)
    pre = predict(spec32, prof, rt, prof.unit(rt.unit), best.precision,
                  block_costs(spec32, prof, prof.unit(rt.unit), best.precision, runtime=rt))
    assert g.ttft_ms == pytest.approx(pre.latency_ms, abs=1e-4)
    assert g.prefill_tokens_per_s == pytest.approx(32 / (pre.latency_ms / 1e3), rel=1e-3)
    # prefill is more work than one token but less than 32 separate tokens (the weights are read once)
    assert best.predicted.latency_ms < g.ttft_ms < 32 * best.predicted.latency_ms
    assert g.peak_memory_mb >= best.predicted.memory_mb.total_mb


def test_jetson_plans_the_cuda_ep_and_costs_tensorrt_for_comparison(reg):
    # a real small LLM (SmolLM-135M's config): the toy config is so small that per-kernel dispatch decides, and
    # the Orin's CPU dispatches faster than its GPU launches kernels (test below)
    spec = inspect_model(str(ROOT / "examples" / "configs" / "smollm-135m.json"), seq_len=128)
    prof, _ = reg.resolve("jetson-orin-nano")
    ps = plan_for_profile(spec, prof, model="smollm-135m")
    best = ps.plans[0]
    assert (best.runtime.name, best.runtime.provider) == ("onnxruntime", "CUDAExecutionProvider")
    assert best.pass_of("export_genai").execution_provider == "cuda"
    assert all(p.runtime.name == "onnxruntime" and p.runtime.provider in ("CUDAExecutionProvider",
                                                                         "CPUExecutionProvider") for p in ps.plans)
    assert "tensorrt/gpu on gpu rejected" in best.rationale["runtime"]
    cands, _, _ = enumerate_candidates(spec, prof, Constraints())
    trt = [c for c in cands if c.target.runtime.name == "tensorrt"]
    assert trt and all("runtime" in c.failed for c in trt)
    # TensorRT would be faster by the cost model: the restriction, not the ranking, keeps it out
    assert min(c.pred.latency_ms for c in trt) < best.predicted.latency_ms


def test_decoders_on_onnxruntime_are_costed_as_the_genai_builders_fused_graph(tiny, reg):
    prof, _ = reg.resolve("host")
    rt = next(r for r in prof.runtimes if r.name == "onnxruntime" and r.provider == "CPUExecutionProvider")
    unit = prof.unit(rt.unit)
    fused = block_costs(tiny, prof, unit, "int8_dynamic", runtime=rt, decode=True)
    op_by_op = block_costs(tiny, prof, unit, "int8_dynamic", runtime=rt, decode=True, fuse=False)
    assert any("GroupQueryAttention" in f for f in fused.fused) and "one packed QKV MatMul" in fused.fused
    assert op_by_op.fused == []
    # 13 ModelSpec ops per layer -> 9 kernels (QKV packed, QKᵀ-softmax-PV in GroupQueryAttention), 11 graph nodes
    per_block = fused.attn.ops + fused.ffn.ops + fused.other.ops
    assert per_block == 9 and op_by_op.attn.ops + op_by_op.ffn.ops + op_by_op.other.ops == 13
    eff = efficiency(prof, unit, rt, "int8_dynamic")
    per_op = eff.per_op_overhead_us * 1e-6
    assert per_block * fused.overhead_s == pytest.approx(11 * per_op)
    # MatMulNBits quantizes inside the kernel: no DynamicQuantizeLinear dispatch, which the op-by-op graph pays
    assert op_by_op.overhead_s == pytest.approx(per_op * GRAPH_OPS_PER_SPEC_OP * 1.3)
    # the mask bookkeeping nodes run once per call
    assert fused.run_s == pytest.approx(eff.per_run_overhead_us * 1e-6 + 6 * per_op)
    assert op_by_op.run_s == pytest.approx(eff.per_run_overhead_us * 1e-6)
    # prefill: no exported-graph masked-softmax passes over seq² scores
    p_fused = block_costs(tiny, prof, unit, "fp32", runtime=rt)
    p_graph = block_costs(tiny, prof, unit, "fp32", runtime=rt, fuse=False)
    assert p_fused.attn.memory_s < p_graph.attn.memory_s
    # on an Orin, the toy decoder's ~30 dispatches are cheaper on the CPU than as GPU kernel launches
    orin, _ = reg.resolve("jetson-orin-nano")
    assert plan_for_profile(tiny, orin, model=str(TINY)).plans[0].runtime.provider == "CPUExecutionProvider"


def test_a_unit_without_a_genai_ep_keeps_its_plan_and_says_build_cannot_make_it(tiny, reg):
    prof, _ = reg.resolve("drive-agx-orin")  # lists TensorRT on its GPU, no onnxruntime CUDA EP
    best = plan_for_profile(tiny, prof, model=str(TINY)).plans[0]
    assert best.runtime.unit == "gpu" and best.runtime.name == "tensorrt"
    assert "`edge-sdk build` cannot make this plan yet" in best.rationale["runtime"]
    cpu = plan_for_profile(tiny, prof, model=str(TINY), constraints=Constraints(runtime="onnxruntime")).plans[0]
    assert cpu.runtime.provider == "CPUExecutionProvider" and "cannot make" not in cpu.rationale["runtime"]


def test_multi_gpu_layouts_keep_every_runtime(reg):
    spec = inspect_model(str(ROOT / "examples" / "configs" / "llama-7b.json"), seq_len=2048)
    prof, _ = reg.resolve("a100-80gb-x8")
    best = plan_for_profile(spec, prof, model="7b").plans[0]
    assert best.layout.tp > 1 and best.runtime.name == "tensorrt"
    g = best.predicted.generation
    assert g is not None and g.prompt_tokens == 32 and g.context == 2048
    assert g.decode_tokens_per_s == pytest.approx(best.predicted.throughput_per_s, rel=1e-3)


def test_asking_for_an_unbuildable_decoder_runtime_is_infeasible_with_the_reason(tiny, reg):
    prof, _ = reg.resolve("jetson-orin-nano")
    with pytest.raises(InfeasibleError) as ei:
        plan_for_profile(tiny, prof, model=str(TINY), constraints=Constraints(runtime="tensorrt"))
    assert "onnxruntime-genai" in str(ei.value) and "tensorrt/gpu" in str(ei.value)


def test_prompt_longer_than_the_context_is_refused():
    with pytest.raises(ValueError, match="longer than the context"):
        GenerationPrediction(prompt_tokens=200, context=128, ttft_ms=1, prefill_tokens_per_s=1, decode_ms_per_token=1,
                             decode_tokens_per_s=1, peak_memory_mb=1, basis="x")
    assert [bench_prompt_tokens(c) for c in (1, 8, 128, 4096)] == [1, 2, 32, 32]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_plan_cli_shows_the_generation_predictions(tmp_path):
    r = cli("plan", "--device", "host", "--model", str(TINY), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "TTFT" in r.stdout and "32-token prompt" in r.stdout and "per generated token" in r.stdout
    r = cli("plan", "--device", "host", "--model", str(TINY), "--json", cwd=tmp_path)
    g = json.loads(r.stdout)["plans"][0]["predicted"]["generation"]
    assert g["prompt_tokens"] == 32 and g["ttft_ms"] > 0 and g["kind"] == "prediction"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_jetson_plan_from_the_cli_builds(tmp_path):
    pytest.importorskip("onnxruntime_genai")
    plan = tmp_path / "jetson.json"
    r = cli("plan", "--device", "jetson-orin-nano", "--model", str(TINY), "--runtime", "CUDAExecutionProvider",
            "-o", str(plan), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(plan.read_text())
    assert data["predicted"]["generation"]["prompt_tokens"] == 32
    data["predicted"]["generation"]["prompt_tokens"] = 24  # a user's edit: the build follows the plan
    plan.write_text(json.dumps(data))
    # the CUDA plan is int4, which keeps ~0.75 next-token agreement on random weights (see test_decoder_build.py)
    r = cli("build", "--plan", str(plan), "-o", str(tmp_path / "bundle"), "--no-archive", "--eval-samples", "48",
            "--max-quality-drop", "0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    from edge_sdk.bundle import verify_bundle

    verify_bundle(tmp_path / "bundle")
    m = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert m["device"] == "jetson-orin-nano"
    art = m["artifacts"][0]
    assert art["runtime"] == "onnxruntime-genai" and art["provider"] == "CUDAExecutionProvider"
    assert m["plan"]["passes"][0]["execution_provider"] == "cuda"
    genai = json.loads((tmp_path / "bundle" / "model" / "genai_config.json").read_text())
    assert genai["model"]["context_length"] == 128
    # the benchmark prompt is exactly as long as the prompt the plan predicts its TTFT for
    with np.load(tmp_path / "bundle" / "sample_inputs.npz") as npz:
        prompt = npz["prompt/input_ids"]
    assert prompt.shape == (1, 24) == (1, m["plan"]["predicted"]["generation"]["prompt_tokens"])
