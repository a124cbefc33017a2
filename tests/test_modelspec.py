"""modelspec: exact params, analytic FLOPs, ONNX parity, JSON round-trip, the `inspect` CLI and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.errors import InputError
from edge_sdk.modelspec import ModelSpec, inspect_model, require_weights

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "examples" / "configs"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _meta_model(config_file: Path, **overrides):
    import torch
    import transformers

    cfg = transformers.AutoConfig.from_pretrained(str(config_file), **overrides)
    cls = getattr(transformers, cfg.architectures[0])
    with torch.device("meta"):
        return cls(cfg)


def _numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _encoder_formula(L: int, s: int, h: int, f: int, batch: int = 1) -> int:
    """2·L·(4·s·h² + 2·s²·h + 2·s·h·f) per sample: projections, scores+context, FFN."""
    return 2 * batch * L * (4 * s * h * h + 2 * s * s * h + 2 * s * h * f)


# -- exact parameter counts ---------------------------------------------------------------------------------------

def test_minilm_params_exact_vs_loaded_model():
    from transformers import AutoModel

    from edge_sdk.modelspec import builtin_model_dir

    spec = inspect_model("minilm")
    real = AutoModel.from_pretrained(str(builtin_model_dir()))
    assert spec.total_params == _numel(real) == 22_713_216
    assert sum(layer.params for layer in spec.layers) == spec.total_params
    assert spec.source_kind == "builtin" and spec.has_weights
    assert spec.transformer is not None and spec.transformer.num_layers == 6
    assert spec.weight_bytes_fp32 == 4 * 22_713_216


def test_bert_base_params_and_flops_formula():
    spec = inspect_model(CONFIGS / "bert-base.json", batch=1, seq_len=128)
    assert spec.total_params == _numel(_meta_model(CONFIGS / "bert-base.json")) == 109_482_240
    assert spec.has_weights is False and spec.source_kind == "config"
    L, s, h, f = 12, 128, 768, 3072
    formula = _encoder_formula(L, s, h, f) + 2 * h * h  # + pooler on the CLS token
    assert abs(spec.total_flops - formula) / formula < 0.02
    assert spec.gemm_flops == formula  # the GEMMs are exactly the formula; non-GEMM ops add ~0.3%


def test_bert_block_has_every_op_in_forward_order():
    spec = inspect_model(CONFIGS / "tiny-bert.json", seq_len=32)
    blocks = spec.blocks()
    assert sorted(blocks) == [0, 1]
    kinds = [layer.kind for layer in blocks[0]]
    assert kinds == ["attention_qkv"] * 3 + ["attention_scores", "softmax", "attention_context", "attention_out",
                                             "norm", "ffn_up", "activation", "ffn_down", "norm"]
    scores = next(layer for layer in blocks[0] if layer.kind == "attention_scores")
    assert scores.gemm and scores.params == 0 and scores.heads == 2
    assert scores.activation_bytes == 1 * 2 * 32 * 32 * 4
    assert not next(layer for layer in blocks[0] if layer.kind == "softmax").gemm
    assert {layer.kind for layer in spec.layers if layer.block is None} == {"embedding", "norm", "pooler"}


def test_vit_b16_params_tokens_and_flops():
    spec = inspect_model(CONFIGS / "vit-b16.json")
    assert spec.total_params == _numel(_meta_model(CONFIGS / "vit-b16.json")) == 86_389_248
    assert spec.seq_len == 197 and spec.transformer.family == "vision"
    assert spec.inputs[0].name == "pixel_values" and spec.inputs[0].shape == ["batch", 3, 224, 224]
    patch = spec.layers_of("patch_embed")
    assert len(patch) == 1 and patch[0].flops == 2 * 196 * (3 * 16 * 16) * 768
    expected = _encoder_formula(12, 197, 768, 3072) + patch[0].flops + 2 * 768 * 768
    assert spec.gemm_flops == expected


def test_vit_image_size_override_changes_tokens():
    spec = inspect_model(CONFIGS / "tiny-vit.json", image_size=64)
    assert spec.seq_len == (64 // 8) ** 2 + 1
    assert spec.transformer.image_size == 64
    with pytest.raises(InputError, match="not a multiple of the patch size"):
        inspect_model(CONFIGS / "tiny-vit.json", image_size=30)


def test_tiny_llama_gqa_swiglu_and_kv_cache():
    spec = inspect_model(CONFIGS / "tiny-llama.json", batch=2, seq_len=16)
    assert spec.total_params == _numel(_meta_model(CONFIGS / "tiny-llama.json"))
    t = spec.transformer
    assert (t.family, t.num_heads, t.num_kv_heads, t.head_dim, t.gated_ffn) == ("decoder", 4, 2, 32, True)
    block = spec.blocks()[0]
    kinds = [layer.kind for layer in block]
    assert kinds == ["norm", "attention_qkv", "attention_qkv", "attention_qkv", "attention_scores", "softmax",
                     "attention_context", "attention_out", "norm", "ffn_up", "ffn_up", "activation", "ffn_down"]
    k_proj = next(layer for layer in block if layer.name.endswith("k_proj"))
    assert k_proj.heads == 2 and k_proj.out_features == 64
    assert spec.layers[-1].kind == "lm_head" and spec.layers[-1].tokens == 2 * 16
    assert spec.kv_cache_bytes(100, 2) == 2 * 2 * 2 * 32 * 100 * 2 * 2
    assert spec.outputs[0].shape == ["batch", "sequence", 1000]


def test_gpt2_tied_lm_head_counts_once():
    import torch
    import transformers

    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=64,
                                  bos_token_id=0, eos_token_id=0)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(cfg)
    spec = inspect_model(model, seq_len=8)
    assert spec.total_params == _numel(model)
    head = spec.layers_of("lm_head")[0]
    assert head.params == 0 and head.tied_to == "transformer.wte" and head.flops == 2 * 8 * 64 * 100
    assert spec.transformer.tie_word_embeddings and spec.transformer.ffn_size == 256
    assert [layer.kind for layer in spec.blocks()[0]].count("attention_qkv") == 1  # fused c_attn


def test_llama_70b_config_inspects_fast_with_exact_params():
    cfg = json.loads((CONFIGS / "llama-70b.json").read_text())
    h, f, L, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // heads
    per_layer = h * h + 2 * h * kv * hd + h * h + 3 * h * f + 2 * h  # q, k+v, o, gate/up/down, two RMSNorms
    expected = V * h + L * per_layer + h + V * h                     # embed, blocks, final norm, lm_head
    t0 = time.perf_counter()
    spec = inspect_model(CONFIGS / "llama-70b.json", seq_len=128)
    elapsed = time.perf_counter() - t0
    assert elapsed < 20, f"70B config took {elapsed:.1f}s"
    assert spec.total_params == expected
    assert abs(spec.total_params - 68.98e9) / 68.98e9 < 0.01
    assert spec.kv_cache_bytes(4096, 2) == 2 * 80 * 8 * 128 * 4096 * 2
    assert spec.weight_bytes("int4") < spec.weight_bytes("int8") < spec.weight_bytes("fp16") < spec.weight_bytes_fp32


@pytest.mark.parametrize("config", ["tiny-bert.json", "tiny-llama.json"])
def test_gemm_flops_match_torch_flop_counter(config):
    """Independent check: PyTorch's FlopCounterMode over a real (eager-attention) forward."""
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    cfg = transformers.AutoConfig.from_pretrained(str(CONFIGS / config))
    cfg._attn_implementation = "eager"
    model = getattr(transformers, cfg.architectures[0])(cfg).eval()
    spec = inspect_model(model, batch=2, seq_len=16)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=torch.randint(0, 1000, (2, 16)))
    assert counter.get_total_flops() == spec.gemm_flops


# -- ONNX ---------------------------------------------------------------------------------------------------------

def _export_tiny_bert(tmp_path: Path, dynamo: bool) -> tuple[Path, ModelSpec]:
    import warnings

    import torch
    import transformers

    cfg = transformers.AutoConfig.from_pretrained(str(CONFIGS / "tiny-bert.json"))
    torch.manual_seed(0)
    bert = transformers.BertModel(cfg).eval()
    with torch.no_grad():  # distinct values: exporters share identical initializers (fresh zero biases)
        for p in bert.parameters():
            p.normal_(0, 0.02)

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    ids = torch.randint(0, 1000, (1, 16))
    path = tmp_path / f"tiny-bert-{'dynamo' if dynamo else 'legacy'}.onnx"
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dim = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
            torch.onnx.export(Wrapped(bert), (ids, torch.ones_like(ids)), str(path), dynamo=True,
                              input_names=["input_ids", "attention_mask"], dynamic_shapes=(dim, dim),
                              external_data=False, verbose=False)
        else:
            torch.onnx.export(Wrapped(bert), (ids, torch.ones_like(ids)), str(path), dynamo=False,
                              input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state",
                                                                                         "pooler_output"],
                              dynamic_axes=axes)
    return path, inspect_model(bert, seq_len=32)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_onnx_inspection_matches_pytorch(tmp_path, dynamo):
    if dynamo:
        pytest.importorskip("onnxscript")
    path, torch_spec = _export_tiny_bert(tmp_path, dynamo)
    spec = inspect_model(path, seq_len=32)
    assert spec.source_kind == "onnx" and spec.has_weights
    assert spec.total_params == torch_spec.total_params == 607_104
    assert spec.gemm_flops == torch_spec.gemm_flops
    assert spec.inputs[0].name == "input_ids" and spec.inputs[0].shape == ["batch", "sequence"]
    t = spec.transformer
    assert t is not None and (t.num_layers, t.hidden_size, t.num_heads, t.ffn_size) == (2, 128, 2, 512)
    kinds = [layer.kind for layer in spec.blocks()[1]]
    for kind in ("attention_qkv", "attention_scores", "softmax", "attention_context", "attention_out", "ffn_up",
                 "activation", "ffn_down", "norm"):
        assert kind in kinds


def test_onnx_external_data_counted_without_reading_it(tmp_path):
    import onnx

    path, torch_spec = _export_tiny_bert(tmp_path, dynamo=False)
    ext_dir = tmp_path / "ext"
    ext_dir.mkdir()
    onnx.save_model(onnx.load(str(path)), str(ext_dir / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=1024)
    spec = inspect_model(ext_dir / "m.onnx", seq_len=32)
    assert (spec.total_params, spec.gemm_flops, spec.has_weights) == (torch_spec.total_params,
                                                                      torch_spec.gemm_flops, True)
    (ext_dir / "m.onnx.data").unlink()
    spec = inspect_model(ext_dir / "m.onnx", seq_len=32)
    assert spec.total_params == torch_spec.total_params and spec.has_weights is False
    assert any("missing" in n for n in spec.notes)


# -- schema, sources, API errors ----------------------------------------------------------------------------------

def test_json_round_trip_and_strict_schema():
    spec = inspect_model(CONFIGS / "tiny-llama.json", seq_len=8)
    again = ModelSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    data = json.loads(spec.model_dump_json())
    data["surprise"] = 1
    with pytest.raises(Exception, match="surprise"):
        ModelSpec.model_validate(data)


def test_hf_dir_without_weights_inspects_but_build_needs_weights(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    shutil.copy(CONFIGS / "tiny-bert.json", d / "config.json")
    spec = inspect_model(d)
    assert spec.source_kind == "hf_dir" and spec.has_weights is False
    with pytest.raises(InputError, match=str(d)):
        require_weights(spec)
    with pytest.raises(InputError, match="no weights"):
        require_weights(d)
    with pytest.raises(InputError, match="config.json has no weights"):
        require_weights(CONFIGS / "tiny-bert.json")
    assert (require_weights("minilm") / "model.safetensors").is_file()


def test_unknown_module_falls_back_to_generic_walk():
    import torch

    model = torch.nn.Sequential(torch.nn.Embedding(100, 16), torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 4))
    spec = inspect_model(model, batch=2, seq_len=10)
    assert spec.transformer is None and any("generic walk" in n for n in spec.notes)
    assert spec.total_params == _numel(model)
    assert spec.total_flops == 2 * 20 * (16 * 32 + 32 * 4)
    assert spec.has_weights and spec.source_kind == "module"


@pytest.mark.parametrize("kwargs, match", [
    ({"batch": 0}, "batch must be a positive integer"),
    ({"seq_len": 0}, "seq_len must be a positive integer"),
    ({"batch": -3}, "batch"),
    ({"image_size": 224}, "vision models only"),
])
def test_bad_arguments_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        inspect_model(CONFIGS / "tiny-bert.json", **kwargs)


# -- CLI ----------------------------------------------------------------------------------------------------------

def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", "inspect", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=120)


def test_cli_inspect_minilm_json():
    r = _cli("minilm", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["total_params"] == 22_713_216
    assert ModelSpec.model_validate(data).transformer.hidden_size == 384


def test_cli_tables_layers_and_device_footprint():
    from typer.testing import CliRunner

    from edge_sdk.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["inspect", str(CONFIGS / "tiny-llama.json"), "--layers", "--seq-len", "64"])
    assert r.exit_code == 0, r.output
    for text in ("Totals", "Structure", "model.layers.1.self_attn.scores", "grouped-query", "KV cache"):
        assert text in r.output
    r = runner.invoke(app, ["inspect", str(CONFIGS / "llama-70b.json"), "--devices", "all", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["model"]["total_params"] > 68e9 and data["footprint"]
    for row in data["footprint"]:
        assert set(row["weights"]) == {"fp32", "fp16", "int8", "int4"}
        assert row["weights"]["fp32"]["fits"] in ("yes", "sharded", "no")


def _bad_files(tmp: Path) -> dict[str, Path]:
    (tmp / "empty_dir").mkdir()
    (tmp / "garbage.json").write_text("{this is not json")
    (tmp / "no_model_type.json").write_text('{"hidden_size": 128}')
    (tmp / "unknown_type.json").write_text('{"model_type": "not-a-real-model"}')
    (tmp / "corrupt.onnx").write_bytes(b"\x08\x07garbage-bytes-that-are-not-a-protobuf\xff\xff\xff")
    (tmp / "bad_values.json").write_text('{"model_type": "bert", "hidden_size": 100, "num_attention_heads": 3}')
    return {p.name: p for p in tmp.iterdir()}


@pytest.mark.parametrize("case, args, expect", [
    ("missing path", ["{tmp}/does-not-exist"], "does-not-exist"),
    ("dir without config.json", ["{tmp}/empty_dir"], "no config.json"),
    ("JSON garbage", ["{tmp}/garbage.json"], "garbage.json: not valid JSON"),
    ("no model_type", ["{tmp}/no_model_type.json"], "field 'model_type' is missing"),
    ("unknown model_type", ["{tmp}/unknown_type.json"], "unknown model type 'not-a-real-model'"),
    ("corrupt ONNX", ["{tmp}/corrupt.onnx"], "corrupt.onnx: not a valid ONNX model"),
    ("invalid field values", ["{tmp}/bad_values.json"], "bad_values.json"),
    ("batch 0", ["minilm", "--batch", "0"], "batch must be a positive integer"),
    ("negative seq_len", ["minilm", "--seq-len", "-5"], "seq_len must be a positive integer"),
])
def test_cli_bad_inputs_one_line_exit_2(tmp_path, case, args, expect):
    _bad_files(tmp_path)
    r = _cli(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2, (case, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (case, r.stderr)
    assert "Traceback" not in r.stderr and expect in lines[0], (case, r.stderr)
    assert r.stdout == ""
