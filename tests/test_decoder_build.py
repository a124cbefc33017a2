"""Decoder LLMs end to end: plan → build (onnxruntime-genai model builder, int4 with KV cache) → verify → bench.

Real components only: the tiny LLaMA config gets random weights (seed 0) and a BPE tokenizer, onnxruntime-genai's
builder writes the ONNX decoder, the quality gate compares its next-token predictions with the PyTorch model, and
the bundle's own device package generates tokens with onnxruntime-genai and with plain onnxruntime (KV-cache loop).

A randomly initialised decoder predicts an almost uniform next-token distribution (its perplexity is about the
vocabulary size), so int4 rounding flips many argmaxes: top-1 agreement is ~0.73 here, where a trained model keeps
far more. The build test therefore gives a budget the int4 plan passes; the gate itself is tested separately.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import edge_sdk
from edge_sdk.errors import InputError, QualityGateError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "configs" / "tiny-llama.json"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    pytest.importorskip("onnxruntime_genai")
    out = tmp_path_factory.mktemp("dec") / "bundle"
    res = edge_sdk.build(str(TINY), device="host", out_dir=out, max_quality_drop=0.5, eval_samples=64,
                         calibration_samples=300, archive=False)
    return res


def test_tiny_llama_builds_an_int4_decoder_with_kv_cache(bundle):
    m = bundle.manifest
    art = m.primary
    assert m.plan.precision == "int4_weight_only" and m.plan.runtime.name == "onnxruntime"
    assert [p.kind for p in m.plan.passes] == ["export_genai"]
    assert m.plan.pass_of("export_genai").precision == "int4" and m.plan.pass_of("export_genai").block_size == 32
    assert art.runtime == "onnxruntime-genai" and art.decoder is not None
    assert art.decoder.context_length == 128 and art.decoder.num_layers == 2 and art.decoder.num_kv_heads == 2
    names = {t.name for t in art.inputs}
    assert {"input_ids", "attention_mask", "past_key_values.0.key", "past_key_values.1.value"} <= names
    assert {"logits", "present.0.key"} <= {t.name for t in art.outputs}
    for f in ("model/model.onnx", "model/genai_config.json", "model/tokenizer.json", "sample_inputs.npz"):
        assert f in m.files, f
    genai = json.loads((bundle.path / "model" / "genai_config.json").read_text())
    assert genai["search"]["max_length"] == 128
    import onnx

    g = onnx.load(str(bundle.path / "model" / "model.onnx"), load_external_data=False).graph
    ops = {n.op_type for n in g.node}
    assert "MatMulNBits" in ops and "GroupQueryAttention" in ops
    blocks = {a.i for n in g.node if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "block_size"}
    assert blocks == {32}
    # `calibrate` times int4 GEMMs as the builder writes them: the same bits, block and compute type
    from edge_sdk.calibration.suite import NBITS_KERNEL

    want = NBITS_KERNEL["int4_weight_only"]
    got = {(a.name, a.i) for n in g.node if n.op_type == "MatMulNBits" for a in n.attribute
           if a.name in ("bits", "block_size", "accuracy_level")}
    assert got == {("bits", want["bits"]), ("block_size", want["block_size"]),
                   ("accuracy_level", want["accuracy_level"])}


def test_the_cost_models_genai_kernel_counts_match_the_graph_the_builder_wrote(bundle):
    """planner/fusion.py's "genai" table (packed QKV, GroupQueryAttention, 11 nodes per layer for 9 costed kernels,
    6 per-call mask nodes) is read off this graph: if the builder changes its graph, the table must follow."""
    import onnx

    from edge_sdk.planner.costmodel import block_costs
    from edge_sdk.planner.fusion import FUSED_GRAPH_OPS_PER_KERNEL, GENAI_PER_CALL_NODES
    from edge_sdk.profiles import load_registry

    g = onnx.load(str(bundle.path / "model" / "model.onnx"), load_external_data=False).graph
    executed = [n for n in g.node if n.op_type != "Constant"]  # Constant nodes are folded at session load
    plan = bundle.manifest.plan
    prof, _ = load_registry().resolve("host")
    rt = next(r for r in prof.runtimes if (r.name, r.provider) == (plan.runtime.name, plan.runtime.provider))
    bc = block_costs(plan.model_spec, prof, prof.unit(rt.unit), plan.precision, runtime=rt, decode=True)
    per_block = (bc.attn.ops + bc.ffn.ops + bc.other.ops) * FUSED_GRAPH_OPS_PER_KERNEL["genai"]
    assert len(executed) == pytest.approx(bc.num_blocks * per_block + bc.outside.ops + GENAI_PER_CALL_NODES)
    assert sum(n.op_type == "GroupQueryAttention" for n in g.node) == bc.num_blocks
    matmuls = sum(n.op_type == "MatMulNBits" for n in g.node)
    assert matmuls == bc.num_blocks * 5 + 1  # packed QKV, o, gate, up, down per layer; the LM head


def test_quality_is_next_token_agreement_and_perplexity(bundle):
    q = bundle.manifest.quality
    metrics = {x.name: x.value for x in q.metrics}
    assert 0.5 < metrics["top1_agreement"] <= 1.0 and q.passed
    assert q.cosine_drop == pytest.approx(1 - metrics["top1_agreement"], abs=1e-6)
    assert abs(metrics["perplexity_delta"]) < 0.05 and metrics["positions"] > 500
    assert any("top-1 agreement" in line for line in bundle.manifest.build_log)


def test_bundle_verifies_and_benches_locally_with_both_engines(bundle):
    from edge_sdk.bundle import verify_bundle

    verify_bundle(bundle.path)
    r = edge_sdk.bench(bundle.path, iterations=40, threads=2, warmup=1)
    g = r.generation
    assert g is not None and g.engine == "onnxruntime-genai"
    assert g.ttft_ms > 0 and g.decode_tokens_per_s > 0 and g.prefill_tokens_per_s > 0 and g.tokens_timed >= 40
    assert r.peak_rss_mb and r.peak_rss_mb > 0
    assert [b.inputs for b in r.batches] == ["decode", "prefill"]
    # the plain-onnxruntime KV-cache loop generates the same greedy tokens
    run = subprocess.run([sys.executable, "-B", "-m", "edge_device", "bench", "--bundle", ".", "--engine",
                          "onnxruntime", "--iterations", "20", "--warmup", "0", "--threads", "2"],
                         cwd=bundle.path, capture_output=True, text=True, timeout=120)
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, last
    assert last["runtime"] == "onnxruntime" and last["generation"]["decode_tokens_per_s"] > 0
    assert last["generation"]["first_tokens"] == g.first_tokens
    # without --threads, onnxruntime-genai gets one thread per physical core (its own default ran one thread)
    run = subprocess.run([sys.executable, "-B", "-m", "edge_device", "bench", "--bundle", ".", "--iterations", "8",
                          "--warmup", "0"], cwd=bundle.path, capture_output=True, text=True, timeout=120)
    last = json.loads(run.stdout.strip().splitlines()[-1])
    from edge_sdk.device.probe import physical_cores

    assert run.returncode == 0 and last["runtime"] == "onnxruntime-genai", last
    assert last["threads"] == physical_cores()


def test_quality_gate_refuses_int4_on_a_tight_budget(tmp_path):
    """Every plan tried and measured; with a budget no random-weight plan meets, exit 4 names each."""
    pytest.importorskip("onnxruntime_genai")
    plans = edge_sdk.plan(str(TINY), device="host", runtime="onnxruntime", top=1)
    with pytest.raises(QualityGateError, match="next-token top-1 agreement"):
        edge_sdk.build(plans.plans[0], out_dir=tmp_path / "b", max_quality_drop=0.001, eval_samples=16,
                       calibration_samples=50, archive=False)
    assert not (tmp_path / "b").exists()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_decoder_directory_without_tokenizer_is_one_line_exit_2(tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(TINY)))
    model.save_pretrained(str(tmp_path / "llm"))
    r = _cli("build", "--model", str(tmp_path / "llm"), "--device", "host", "-o", str(tmp_path / "b"), cwd=ROOT)
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]  # progress lines go to stderr too
    assert len(errors) == 1 and "no tokenizer.json" in errors[0], r.stderr
    assert "Traceback" not in r.stderr and r.stderr.rstrip().endswith("tokenizer.save_pretrained(dir))")


def test_unsupported_architecture_and_too_long_context_are_input_errors(tmp_path):
    gpt2 = tmp_path / "gpt2.json"
    gpt2.write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64,
                                "n_head": 2, "n_layer": 1, "n_positions": 128, "vocab_size": 500}))
    with pytest.raises(InputError, match="architecture 'GPT2LMHeadModel' cannot be built as a decoder"):
        edge_sdk.build(str(gpt2), device="host", out_dir=tmp_path / "b1", archive=False)
    long = edge_sdk.plan(str(TINY), device="host", runtime="onnxruntime", seq_len=1024, top=1)
    assert long.plans[0].pass_of("export_genai").context_length == 1024
    with pytest.raises(InputError, match="longer than tiny-llama's max_position_embeddings 512"):
        edge_sdk.build(long.plans[0], out_dir=tmp_path / "b2", archive=False)


def test_device_package_generates_text_with_either_engine(bundle):
    outs = []
    for engine in ("onnxruntime-genai", "onnxruntime"):
        r = subprocess.run([sys.executable, "-B", "-m", "edge_device", "generate", "--prompt", "the weather today is",
                            "--max-new-tokens", "8", "--engine", engine], cwd=bundle.path, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout))
    a, b = outs
    assert a["engine"] == "onnxruntime-genai" and b["engine"] == "onnxruntime"
    assert a["tokens"] == b["tokens"] and a["text"] == b["text"] and isinstance(a["text"], str)
    assert len(a["tokens"]) == 8 or a["stopped"] == "eos"
    bad = subprocess.run([sys.executable, "-B", "-m", "edge_device", "generate", "--prompt", "x",
                          "--max-new-tokens", "0"], cwd=bundle.path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("edge_device generate: error:")


def test_model_api_generates_with_the_loaded_engine_and_refuses_encoder_calls(bundle):
    from edge_sdk.device import Model
    from edge_sdk.device.errors import DeviceError

    m = Model(bundle.path)
    a = m.generate("the weather today is", max_new_tokens=6)
    b = m.generate("the weather today is", max_new_tokens=6)  # the same loaded engine, greedy: the same tokens
    cli = subprocess.run([sys.executable, "-B", "-m", "edge_device", "generate", "--prompt", "the weather today is",
                          "--max-new-tokens", "6"], cwd=bundle.path, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert a["tokens"] == b["tokens"] == json.loads(cli.stdout)["tokens"] and a["ttft_ms"] > 0
    with pytest.raises(DeviceError, match="is a decoder bundle: use generate"):
        m.embed(["a sentence"])
    with pytest.raises(DeviceError, match="must be >= 1"):
        m.generate("x", max_new_tokens=0)


FAKE_TEGRASTATS = """#!/bin/sh
while true; do
  echo "11-30-2026 10:00:00 RAM 2244/7620MB CPU@47.5C tj@48.25C VDD_IN 5000mW/5000mW VDD_SOC 1300mW/1300mW"
  sleep 0.02
done
"""


def test_decoder_bench_reads_jetson_power_and_reports_energy_per_token(bundle, tmp_path):
    """tegrastats (a stand-in script printing Jetson's format: this machine has none) runs beside the generations."""
    exe = tmp_path / "bin" / "tegrastats"
    exe.parent.mkdir()
    exe.write_text(FAKE_TEGRASTATS)
    exe.chmod(0o755)
    env = dict(__import__("os").environ, PATH=f"{exe.parent}:{__import__('os').environ['PATH']}")
    run = subprocess.run([sys.executable, "-B", "-m", "edge_device", "bench", "--bundle", ".", "--iterations", "60",
                          "--warmup", "1", "--threads", "2"], cwd=bundle.path, capture_output=True, text=True,
                         timeout=120, env=env)
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, last
    g, ts = last["generation"], last["tegrastats"]
    assert ts["power_rail"] == "VDD_IN" and ts["power_mw_mean"] == pytest.approx(5000)
    assert g["power_mw_mean"] == pytest.approx(5000)
    assert g["energy_mj_per_token"] == pytest.approx(5000 * g["decode_ms_per_token"] / 1e3, rel=1e-3)


@pytest.mark.ssh
def test_decoder_deploys_over_ssh_benches_there_and_is_refused_when_it_cannot_fit(bundle, tmp_path):
    """A real OpenSSH server on loopback: deploy, `bench --target` (TTFT, tokens/s), `targets check --bundle`; the same
    bundle with a context whose KV cache exceeds the device's free memory is refused before anything is sent."""
    import shutil

    from conftest import root_loopback_sshd, write_loopback_target
    from edge_sdk.benchmark import BenchResult

    big = tmp_path / "huge-context"
    shutil.copytree(bundle.path, big)
    m = json.loads((big / "manifest.json").read_text())
    m["artifacts"][0]["decoder"]["context_length"] = 10 ** 8  # 2 layers × 2 KV heads × 32 × fp32: 1 KiB per token
    (big / "manifest.json").write_text(json.dumps(m))
    with root_loopback_sshd(tmp_path) as server:
        target = write_loopback_target(server, tmp_path)
        refused = _cli("deploy", str(big), "--target", str(target), cwd=ROOT)
        assert refused.returncode == 3, refused.stderr
        assert "KV cache 102,400.0 MB at context 100000000" in refused.stderr and "MB available" in refused.stderr
        assert "Traceback" not in refused.stderr and "nothing was sent" in refused.stderr
        assert not list((tmp_path / "device" / "releases").glob("*"))  # no release, no half-upload
        check = _cli("targets", "check", str(target), "--bundle", str(big), "--json", cwd=ROOT)
        assert check.returncode == 1 and any("memory: the decoder needs" in p
                                             for p in json.loads(check.stdout)["problems"])

        dep = _cli("deploy", str(bundle.path), "--target", str(target), "--json", cwd=ROOT)
        assert dep.returncode == 0, dep.stderr
        ok = json.loads(_cli("targets", "check", str(target), "--bundle", str(bundle.path), "--json", cwd=ROOT).stdout)
        assert ok["ok"] and "KV cache" in ok["bundle_memory"] and "MemAvailable" in ok["bundle_memory"]
        r = _cli("bench", "--target", str(target), "--iterations", "40", "--threads", "2", "--json", cwd=ROOT)
        assert r.returncode == 0, r.stderr
        res = BenchResult.model_validate_json(r.stdout)
        g = res.generation
        assert res.target == "loop" and res.release == json.loads(dep.stdout)["release_id"]
        assert g is not None and g.ttft_ms > 0 and g.decode_tokens_per_s > 0 and g.tokens_timed >= 40
        assert [b.inputs for b in res.batches] == ["decode", "prefill"]
        # the release's plan is read back, so its generation prediction stands beside the measurement
        # (re-costed when this machine has a calibration, so compare what does not depend on it)
        built = bundle.manifest.plan.predicted.generation
        pg = res.predicted_generation
        assert pg is not None and (pg.prompt_tokens, pg.context) == (built.prompt_tokens, built.context)


def test_predict_cli_continues_prompts_with_a_decoder_bundle(bundle, tmp_path):
    r = _cli("predict", str(bundle.path), "--text", "the weather today is", "--text", "a board", "--max-new-tokens",
             "5", "--json", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["task"] == "generate" and rec["prompts"] == ["the weather today is", "a board"]
    assert all(len(g["tokens"]) == 5 or g["stopped"] == "eos" for g in rec["generations"])
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    bad = _cli("predict", str(bundle.path), "--npz", str(empty), cwd=ROOT)
    assert bad.returncode == 2 and "not a readable .npz" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_prefills_at_the_plans_context_with_prompt_tokens_max(bundle):
    context = bundle.manifest.primary.decoder.context_length
    r = edge_sdk.bench(bundle.path, iterations=10, threads=2, warmup=1, prompt_tokens="max", new_tokens=8)
    g = r.generation
    assert (g.prompt_tokens, g.new_tokens) == (context - 8, 8) and g.prefill_tokens_per_s > 0
    assert edge_sdk.bench(bundle.path, iterations=5, threads=2, prompt_tokens=40).generation.prompt_tokens == 40
    bad = _cli("bench", "--local", "--bundle", str(bundle.path), "--prompt-tokens", str(context), cwd=ROOT)
    assert bad.returncode == 2 and f"the prompt must be 1 to {context - 1} tokens" in bad.stderr
