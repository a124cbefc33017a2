"""LiteRT export against real components: transformers models, torch.export, litert-torch and ai-edge-quantizer in
the isolated .venv-litert, and ai-edge-litert's Interpreter running every .tflite written here.

Each conversion starts a converter process (~10 s of imports + lowering), so the tests share a few module-scoped
conversions: a pruned tiny BERT (hidden 64, 2 layers, per-layer head counts 1 and 3) in fp32, dynamic int8 and
full int8, a tiny ViT in fp16, and one MiniLM in dynamic int8. The tiny BERT uses MiniLM's vocabulary so real
sentences tokenize (and so its embedding table dominates the file, like in real encoders).

The converter environment is installed by ./test (scripts/setup-litert). Without it these tests FAIL — they are
the only check that .tflite export works, so silently skipping them would hide a broken install.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, ViTConfig, ViTModel

from edge_sdk.errors import EdgeSdkError, InputError
from edge_sdk.modelspec.sources import builtin_model_dir
from edge_sdk.schemas.passes import ExportTfliteConfig
from edge_sdk.passes.export_tflite import LITERT_PYTHON_ENV, LiteRtEnvError, litert_python
from edge_sdk.passes.prune_surgery import PruningRecord, apply_record
from edge_sdk.passes.registry import apply_pass
from edge_sdk.passes.state import BuildState
from edge_sdk.quality import builtin_sentences, torch_embed_fn
from edge_sdk.quality.runners_litert import litert_interpreter, tflite_embed_fn

SEQ = 32
FP32_TOL = 1e-4  # on L2-normalised embeddings (values <= 1)


def _sentences(n: int) -> list[str]:
    return list(builtin_sentences(n).inputs)


@pytest.fixture(scope="module", autouse=True)
def litert_env():
    """FAIL (not skip) when the converter environment is missing: CI's ./test installs it."""
    try:
        return litert_python()
    except LiteRtEnvError as exc:
        missing = str(exc)
    pytest.fail(f"{missing}. Run ./test (it runs scripts/setup-litert) instead of bare pytest.", pytrace=False)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(builtin_model_dir())


@pytest.fixture(scope="module")
def pruned_bert(tokenizer):
    """Tiny BERT cut by the pruning pass's own surgery to 1 head in layer 0 and 3 in layer 1 (of 4), FFN 128 → 96:
    the per-layer shapes a pruned model has."""
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    record = PruningRecord.identity(model)
    record = record.model_copy(update={"kept_heads": [[2], [0, 1, 3]],
                                       "kept_ffn": [list(range(0, 128, 4)) + list(range(1, 128, 2)),
                                                    list(range(96))]})
    apply_record(model, record)
    return model.eval()


def _state(model, tmp: Path, tokenizer=None, kind="text", texts=(), images=None) -> BuildState:
    return BuildState(model=model, teacher=model, tokenizer=tokenizer, work_dir=tmp, model_kind=kind,
                      calibration_texts=tuple(texts), calibration_images=images)


def _export(model, tmp: Path, config: ExportTfliteConfig, **kw):
    state = apply_pass(config, _state(model, tmp, **kw))
    rec = state.latest("tflite")
    assert rec is not None and rec.path.is_file()
    assert not [p for p in tmp.iterdir() if p.name.startswith(".")], "temporary files left behind"
    return rec, state


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def bert_fp32(pruned_bert, tokenizer, tmp_path_factory):
    return _export(pruned_bert, tmp_path_factory.mktemp("fp32"), ExportTfliteConfig(quantize="none", seq_len=SEQ),
                   tokenizer=tokenizer)


@pytest.fixture(scope="module")
def bert_int8(pruned_bert, tokenizer, tmp_path_factory):
    return _export(pruned_bert, tmp_path_factory.mktemp("int8"),
                   ExportTfliteConfig(quantize="dynamic_int8", seq_len=SEQ), tokenizer=tokenizer)


# --------------------------------------------------------------------------------------------- tiny BERT
def test_fp32_runs_in_litert_and_matches_torch(bert_fp32, pruned_bert, tokenizer):
    rec, state = bert_fp32
    assert rec.format == "tflite" and rec.precision == "fp32" and rec.produced_by == "export_tflite"
    # the signature the device sees: static [1, SEQ] int32 token inputs, named outputs
    runner = litert_interpreter(rec.path).get_signature_runner()
    ins = {n: (d["dtype"], tuple(d["shape"])) for n, d in runner.get_input_details().items()}
    assert ins == {n: (np.int32, (1, SEQ)) for n in ("input_ids", "attention_mask", "token_type_ids")}
    outs = {n: tuple(d["shape"]) for n, d in runner.get_output_details().items()}
    assert outs == {"embeddings": (1, 64), "last_hidden_state": (1, SEQ, 64)}
    assert [i["name"] for i in rec.details["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    # the pass's own check, recorded
    assert max(rec.details["max_abs_diff"].values()) <= FP32_TOL
    assert rec.details["tools"]["litert-torch"] and rec.details["tolerance_rel"] == FP32_TOL
    assert any("LiteRT vs PyTorch" in line for line in state.log)
    # and an independent one on real sentences, one of them longer than SEQ tokens (truncated on both sides)
    texts = _sentences(6) + [" ".join(["the quick brown fox jumps over the lazy dog"] * 8)]
    embed = tflite_embed_fn(rec.path, tokenizer)
    assert embed.seq_len == SEQ
    got = embed(texts)
    ref = torch_embed_fn(pruned_bert, tokenizer, max_length=SEQ)(texts)
    assert got.shape == (len(texts), 64) and got.dtype == np.float32
    assert float(np.max(np.abs(got - ref))) <= FP32_TOL
    # padding must be masked out: the same sentence alone gives the same vector as in the batch above
    assert np.allclose(embed(texts[:1]), got[:1], atol=1e-6)


def test_dynamic_int8_is_much_smaller_and_close(bert_fp32, bert_int8, pruned_bert, tokenizer):
    fp32, _ = bert_fp32
    int8, _ = bert_int8
    assert int8.precision == "int8_dynamic" and int8.details["recipe"] == "dynamic_wi8_afp32"
    ratio = fp32.size_bytes / int8.size_bytes
    # per-channel int8 stores a scale and a zero point (12 bytes) per row of the 64-wide embedding table, so a
    # hidden size this small caps the ratio near 3.4x; MiniLM (384 wide) reaches 3.8x (tested below)
    assert ratio >= 3.0, f"dynamic int8 only {ratio:.2f}x smaller ({fp32.size_bytes} → {int8.size_bytes} bytes)"
    texts = _sentences(8)
    got = tflite_embed_fn(int8.path, tokenizer)(texts)
    ref = torch_embed_fn(pruned_bert, tokenizer, max_length=SEQ)(texts)
    cos = _cosines(got, ref)
    assert cos.min() >= 0.98, cos
    assert cos.min() < 1 - 1e-7, "int8 output identical to fp32: was anything quantized?"


def test_full_int8_with_calibration_runs(pruned_bert, tokenizer, tmp_path):
    texts = _sentences(40)
    rec, _ = _export(pruned_bert, tmp_path, ExportTfliteConfig(quantize="full_int8", seq_len=SEQ,
                                                               calibration_samples=16),
                     tokenizer=tokenizer, texts=texts[8:])
    assert rec.precision == "int8_static" and rec.details["recipe"] == "static_wi8_ai8"
    # fully int8 down to its outputs: the record carries what a device needs to read them
    emb = next(o for o in rec.details["outputs"] if o["name"] == "embeddings")
    assert emb["dtype"] == "int8" and emb["scale"] > 0
    got = tflite_embed_fn(rec.path, tokenizer)(texts[:8])
    ref = torch_embed_fn(pruned_bert, tokenizer, max_length=SEQ)(texts[:8])
    cos = _cosines(got, ref)
    print(f"\nfull int8 (tiny pruned BERT, 16 calibration sentences): cosine min {cos.min():.4f} mean {cos.mean():.4f}")
    assert np.all(np.isfinite(got)) and cos.min() >= 0.9, cos


def test_full_int8_without_calibration_data_is_refused(pruned_bert, tokenizer, tmp_path):
    with pytest.raises(InputError, match="full_int8.*calibration texts"):
        apply_pass(ExportTfliteConfig(quantize="full_int8", seq_len=SEQ), _state(pruned_bert, tmp_path, tokenizer))
    assert not list(tmp_path.iterdir())


def test_bad_config_values_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ExportTfliteConfig(quantize="int4")
    with pytest.raises(ValidationError):
        ExportTfliteConfig(seq_len=0)


def test_missing_converter_env_names_the_fix(pruned_bert, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv(LITERT_PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(LiteRtEnvError, match="scripts/setup-litert") as info:
        apply_pass(ExportTfliteConfig(), _state(pruned_bert, tmp_path, tokenizer))
    assert info.value.exit_code == 7 and "\n" not in str(info.value)  # a tool failure, not bad input


def test_converter_failure_is_one_clear_error(pruned_bert, tokenizer, tmp_path, monkeypatch):
    """A converter python that is not the LiteRT env (here: the main env, which has no litert_torch) fails with the
    child's own error, and leaves nothing behind."""
    monkeypatch.setenv(LITERT_PYTHON_ENV, sys.executable)
    with pytest.raises(EdgeSdkError, match="litert") as info:
        apply_pass(ExportTfliteConfig(seq_len=8), _state(pruned_bert, tmp_path, tokenizer))
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------- tiny ViT
def test_tiny_vit_fp16_converts_and_runs(tmp_path):
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=128)
    model = ViTModel(cfg, add_pooling_layer=False).eval()
    rec, _ = _export(model, tmp_path, ExportTfliteConfig(quantize="fp16"), kind="vision")
    assert rec.precision == "fp16"
    runner = litert_interpreter(rec.path).get_signature_runner()
    assert {n: tuple(d["shape"]) for n, d in runner.get_input_details().items()} == {"pixel_values": (1, 3, 32, 32)}
    images = np.random.default_rng(5).standard_normal((4, 3, 32, 32)).astype(np.float32)
    got = tflite_embed_fn(rec.path)(images)
    ref = torch_embed_fn(model)(images)  # CLS token, L2-normalised
    assert got.shape == (4, 64)
    assert float(np.max(np.abs(got - ref))) <= 5e-3  # fp16 weights
    assert _cosines(got, ref).min() >= 0.999


# ---------------------------------------------------------------------------------------------- real MiniLM
@pytest.mark.slow
def test_minilm_dynamic_int8_quality(tokenizer, tmp_path):
    model = AutoModel.from_pretrained(builtin_model_dir()).eval()
    rec, _ = _export(model, tmp_path, ExportTfliteConfig(quantize="dynamic_int8", seq_len=128),
                     tokenizer=tokenizer)
    texts = _sentences(32)
    got = tflite_embed_fn(rec.path, tokenizer)(texts)
    ref = torch_embed_fn(model, tokenizer, max_length=128)(texts)
    cos = _cosines(got, ref)
    ratio = rec.details["float_bytes"] / rec.size_bytes
    print(f"\nMiniLM dynamic int8 .tflite: {rec.size_mb:.1f} MB ({ratio:.2f}x smaller than fp32), cosine vs "
          f"PyTorch on {len(texts)} shipped sentences: min {cos.min():.4f} mean {cos.mean():.4f}; "
          f"convert {rec.details['convert_seconds']} s, pass {rec.details['seconds']} s")
    assert cos.mean() >= 0.99 and cos.min() >= 0.98, cos
    assert ratio >= 3.5
