"""Sample-input files (the runner's key convention) and the tiny real bundles the runner/bench tests use.

The bundles are real: a 2-layer BERT exported with torch.onnx.export, and a LiteRT flatbuffer built with the
schema bindings ai-edge-litert ships (litert-torch is not installed here), both written by bundle.write_bundle.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.benchmark.inputs import save_sample_inputs
from edge_sdk.errors import InputError

VOCAB = 1000
TFLITE_SEQ = 16
_CACHE: dict[str, Path] = {}


# ----------------------------------------------------------------------------------------------- helpers


def sample_arrays(rows: int = 4, real_len: int = 12, padded_len: int = 32, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for kind, length in (("real", real_len), ("padded", padded_len)):
        ids = rng.integers(1, VOCAB, size=(rows, length), dtype=np.int64)
        mask = np.ones((rows, length), dtype=np.int64)
        if kind == "padded":
            ids[:, real_len:] = 0
            mask[:, real_len:] = 0
        out[f"{kind}/input_ids"] = ids
        out[f"{kind}/attention_mask"] = mask
    return out


def tiny_bert_onnx(cache_dir: Path) -> Path:
    """A 2-layer, 64-wide BERT with random weights, dynamic batch and sequence axes (exported once per run)."""
    if "onnx" in _CACHE:
        return _CACHE["onnx"]
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                     vocab_size=VOCAB, max_position_embeddings=128)
    bert = BertModel(cfg).eval()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = Encoder().eval()
    ids = torch.randint(1, VOCAB, (2, 12))
    mask = torch.ones_like(ids)
    path = cache_dir / "tiny-bert.onnx"
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"},
                                        "last_hidden_state": {0: "batch", 1: "seq"}})
    _CACHE["onnx"] = path
    return path


def tiny_tflite(cache_dir: Path, seq: int = TFLITE_SEQ) -> Path:
    """A static-shape LiteRT graph with int32 inputs [1, seq] like litert-torch exports (args_0, args_1):
    out = float(args_0) * float(args_1)."""
    if "tflite" in _CACHE:
        return _CACHE["tflite"]
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def tensor(name, ttype, buf):
        t = s.TensorT()
        t.name, t.type, t.buffer = name, ttype, buf
        t.shape = t.shapeSignature = np.array([1, seq], dtype=np.int32)
        return t

    def cast(inp, out, in_type):
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, np.array([inp], np.int32), np.array([out], np.int32)
        op.builtinOptionsType = s.BuiltinOptions.CastOptions
        op.builtinOptions = s.CastOptionsT()
        op.builtinOptions.inDataType, op.builtinOptions.outDataType = in_type, s.TensorType.FLOAT32
        return op

    sub = s.SubGraphT()
    sub.name = "main"
    sub.tensors = [tensor("serving_default_args_0:0", s.TensorType.INT32, 1),
                   tensor("serving_default_args_1:0", s.TensorType.INT32, 2),
                   tensor("ids_f", s.TensorType.FLOAT32, 3), tensor("mask_f", s.TensorType.FLOAT32, 4),
                   tensor("StatefulPartitionedCall:0", s.TensorType.FLOAT32, 5)]
    sub.inputs, sub.outputs = np.array([0, 1], np.int32), np.array([4], np.int32)
    mul = s.OperatorT()
    mul.opcodeIndex, mul.inputs, mul.outputs = 1, np.array([2, 3], np.int32), np.array([4], np.int32)
    mul.builtinOptionsType, mul.builtinOptions = s.BuiltinOptions.MulOptions, s.MulOptionsT()
    sub.operators = [cast(0, 2, s.TensorType.INT32), cast(1, 3, s.TensorType.INT32), mul]
    codes = []
    for code in (s.BuiltinOperator.CAST, s.BuiltinOperator.MUL):
        c = s.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = code
        c.version = 1
        codes.append(c)
    model = s.ModelT()
    model.version, model.description = 3, "edge-sdk test graph"
    model.operatorCodes, model.subgraphs = codes, [sub]
    model.buffers = [s.BufferT() for _ in range(6)]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path = cache_dir / "tiny.tflite"
    path.write_bytes(bytes(b.Output()))
    _CACHE["tflite"] = path
    return path


def make_plan(fmt: str = "onnx", provider: str = "CPUExecutionProvider", latency_ms: float = 2.0,
              device: str = "host", batch: int = 1, seq_len: int = 32):
    from edge_sdk.schemas.passes import ExportOnnxConfig, ExportTfliteConfig
    from edge_sdk.schemas.plan import MemoryBreakdown, Plan, Prediction, QualityEstimate, RuntimeChoice

    runtime = "onnxruntime" if fmt == "onnx" else "litert"
    passes = [ExportOnnxConfig()] if fmt == "onnx" else [ExportTfliteConfig(seq_len=seq_len)]
    mem = MemoryBreakdown(weights_mb=1.0, activations_mb=0.5, overhead_mb=10.0, total_mb=11.5)
    pred = Prediction(latency_ms=latency_ms, throughput_per_s=batch * 1000.0 / latency_ms, memory_mb=mem,
                      size_mb=1.0, quality=QualityEstimate(expected_cosine=1.0, cosine_drop=0.0, risk="low",
                                                           basis="fp32 export"))
    return Plan(model="tiny-bert", model_name="tiny-bert", device=device, batch=batch, seq_len=seq_len,
                precision="fp32", runtime=RuntimeChoice(name=runtime, provider=provider, unit="cpu", format=fmt),
                passes=passes, predicted=pred)


def make_bundle(out_dir: Path, fmt: str = "onnx", provider: str | None = None, latency_ms: float = 2.0,
                samples: dict | None = None, cache_dir: Path | None = None) -> Path:
    """A real bundle written by bundle.write_bundle (which also copies the runner in)."""
    from edge_sdk.bundle import write_bundle
    from edge_sdk.schemas.bundle import Artifact, TensorSig

    cache_dir = cache_dir or out_dir.parent
    if fmt == "onnx":
        provider = provider or "CPUExecutionProvider"
        model, rel = tiny_bert_onnx(cache_dir), "model/model.onnx"
        ins = [TensorSig(name=n, dtype="int64", shape=["batch", "seq"]) for n in ("input_ids", "attention_mask")]
        outs = [TensorSig(name="last_hidden_state", dtype="float32", shape=["batch", "seq", 64])]
        runtime = "onnxruntime"
    else:
        provider = provider or "xnnpack"
        model, rel = tiny_tflite(cache_dir), "model/model.tflite"
        ins = [TensorSig(name=n, dtype="int32", shape=[1, TFLITE_SEQ]) for n in ("input_ids", "attention_mask")]
        outs = [TensorSig(name="out", dtype="float32", shape=[1, TFLITE_SEQ])]
        runtime = "litert"
    npz = save_sample_inputs(cache_dir / f"samples-{os.getpid()}-{fmt}.npz", samples or sample_arrays())
    art = Artifact(path=rel, format=fmt, runtime=runtime, provider=provider, precision="fp32", inputs=ins,
                   outputs=outs)
    write_bundle(out_dir, {rel: model, "inputs/samples.npz": npz},
                 {"model_id": "tiny-bert", "model_name": "tiny-bert", "device": "host",
                  "plan": make_plan(fmt, provider, latency_ms), "artifacts": [art],
                  "sample_inputs": "inputs/samples.npz", "versions": {"test": "1"}})
    return out_dir


# ----------------------------------------------------------------------------------------------- tests


def test_save_sample_inputs_keys_round_trip(tmp_path):
    arrays = sample_arrays(rows=3)
    p = save_sample_inputs(tmp_path / "in" / "samples.npz", arrays)
    with np.load(p) as npz:
        assert sorted(npz.files) == sorted(arrays)
        np.testing.assert_array_equal(npz["padded/input_ids"], arrays["padded/input_ids"])
    assert [f.name for f in p.parent.iterdir()] == ["samples.npz"]  # no temp file left behind


def test_save_sample_inputs_nested_form(tmp_path):
    p = save_sample_inputs(tmp_path / "s.npz", {"real": {"input_ids": np.ones((2, 5), np.int64)}})
    with np.load(p) as npz:
        assert npz.files == ["real/input_ids"]


@pytest.mark.parametrize("arrays, needle", [
    ({"input_ids": np.ones((2, 3))}, "'<kind>/<input name>'"),
    ({"weird/input_ids": np.ones((2, 3))}, "kind must be one of"),
    ({"real/input_ids": np.ones((2, 3)), "real/attention_mask": np.ones((3, 3))}, "same number of rows"),
    ({"real/input_ids": np.array(["a", "b"])}, "numeric array"),
    ({}, "no arrays"),
])
def test_save_sample_inputs_rejects_bad_arrays(tmp_path, arrays, needle):
    with pytest.raises(InputError, match=needle.replace("(", r"\(").replace("'", "'")):
        save_sample_inputs(tmp_path / "s.npz", arrays)
    assert not list(tmp_path.iterdir())
