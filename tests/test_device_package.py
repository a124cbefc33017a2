"""The device package every bundle ships (`edge_device/`): its predict API on real ONNX bundles, the `predict` command
(device side and `edge-sdk predict`), and that a copied bundle runs it with nothing of edge_sdk importable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.device import Model
from edge_sdk.device.errors import DeviceError
from test_bench_inputs import VOCAB, make_bundle, make_plan, sample_arrays

PY = sys.executable
LABELS = {"0": "negative", "1": "neutral", "2": "positive"}
WORDS = ["good", "bad", "fine", "movie", "great", "awful", "plot", "the", "a", "was"]
# run `python -m edge_device` with edge_sdk made unimportable, isolated from env vars, user site and the cwd (-I)
BOOT = ("import runpy, sys; sys.modules['edge_sdk'] = None; sys.path.insert(0, '.'); "
        "runpy.run_module('edge_device', run_name='__main__', alter_sys=True)")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("device-package")


@pytest.fixture(scope="module")
def encoder_bundle(work):
    return make_bundle(work / "encoder", cache_dir=work)


def _export(model, path: Path, outputs: list[str]) -> Path:
    import torch

    ids = torch.randint(1, VOCAB, (2, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, torch.ones_like(ids)), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=outputs, opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask")})
    return path


def _word_tokenizer(dest: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                                 ("[SEP]", 3)])
    dest.mkdir(parents=True, exist_ok=True)
    tok.save(str(dest / "tokenizer.json"))
    return dest / "tokenizer.json"


def _bundle(out: Path, model_path: Path, outputs: list[str], *, id2label=None, tokenizer: Path | None = None) -> Path:
    from edge_sdk.benchmark.inputs import save_sample_inputs
    from edge_sdk.bundle import write_bundle
    from edge_sdk.schemas.bundle import Artifact, TensorSig

    ins = [TensorSig(name=n, dtype="int64", shape=["batch", "seq"]) for n in ("input_ids", "attention_mask")]
    outs = [TensorSig(name=n, dtype="float32", shape=["batch"]) for n in outputs]
    art = Artifact(path="model.onnx", format="onnx", runtime="onnxruntime", provider="CPUExecutionProvider",
                   precision="fp32", inputs=ins, outputs=outs)
    npz = save_sample_inputs(out.parent / f"{out.name}-samples.npz", sample_arrays(rows=3, real_len=6, padded_len=10))
    files = {"model.onnx": model_path, "sample_inputs.npz": npz}
    fields = {"model_id": "tiny", "model_name": "tiny", "device": "host", "plan": make_plan(seq_len=16),
              "artifacts": [art], "sample_inputs": "sample_inputs.npz", "versions": {"test": "1"},
              "id2label": id2label}
    if tokenizer is not None:
        files["tokenizer/tokenizer.json"] = tokenizer
        fields["preprocessing"] = {"tokenizer": "tokenizer/"}
    write_bundle(out, files, fields)
    return out


@pytest.fixture(scope="module")
def classifier(work):
    """A tiny BertForSequenceClassification (3 labels) exported with output `logits`, its tokenizer and id2label."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     vocab_size=VOCAB, max_position_embeddings=64, num_labels=3, id2label=LABELS)
    clf = BertForSequenceClassification(cfg).eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = clf

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    onnx = _export(Logits().eval(), work / "clf.onnx", ["logits"])
    tok = _word_tokenizer(work / "tok")
    return _bundle(work / "clf", onnx, ["logits"], id2label=LABELS, tokenizer=tok), clf


def test_run_and_embed_on_a_real_onnx_bundle(encoder_bundle):
    import onnxruntime as ort

    m = Model(encoder_bundle, threads=1)
    assert m.input_names == ["input_ids", "attention_mask"] and m.output_names == ["last_hidden_state"]
    arrays = {k.split("/")[1]: v for k, v in sample_arrays().items() if k.startswith("padded/")}
    out = m.run(arrays)
    ref = ort.InferenceSession(str(encoder_bundle / "model" / "model.onnx")).run(None, arrays)[0]
    np.testing.assert_allclose(out["last_hidden_state"], ref, rtol=1e-4, atol=1e-5)
    # no pooled output in this graph: token vectors mean-pooled over the real tokens, L2-normalised
    emb = m.embed(arrays)
    mask = arrays["attention_mask"][..., None].astype(np.float32)
    want = (ref * mask).sum(1) / mask.sum(1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert emb.shape == (4, 64) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, want, rtol=1e-4, atol=1e-5)
    one = m.embed({"input_ids": arrays["input_ids"][0], "attention_mask": arrays["attention_mask"][0]})
    np.testing.assert_allclose(one, emb[:1], rtol=1e-4, atol=1e-5)  # one unbatched sequence is a batch of one
    assert not m.is_classifier
    with pytest.raises(DeviceError, match="takes inputs input_ids, attention_mask; got ids") as info:
        m.run({"ids": arrays["input_ids"]})
    assert info.value.code == 2
    with pytest.raises(DeviceError, match="this bundle has no tokenizer"):
        m.embed(["raw text needs a tokenizer"])


def test_embed_returns_the_graphs_pooled_output(work, encoder_bundle):
    """A graph that exports `embeddings` (as edge-sdk's export does) is taken at its word, not re-pooled."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                vocab_size=VOCAB, max_position_embeddings=64)).eval()

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return h, torch.nn.functional.normalize(h[:, 0], dim=-1)  # CLS: differs from a mean pool

    b = _bundle(work / "pooled", _export(Pooled().eval(), work / "pooled.onnx", ["last_hidden_state", "embeddings"]),
                ["last_hidden_state", "embeddings"])
    m = Model(b)
    arrays = {k.split("/")[1]: v for k, v in sample_arrays().items() if k.startswith("real/")}
    np.testing.assert_array_equal(m.embed(arrays), m.run(arrays)["embeddings"])


def test_classify_uses_the_shipped_id2label(classifier):
    import torch

    bundle, clf = classifier
    m = Model(bundle)
    assert m.is_classifier and m.id2label == LABELS
    texts = ["the movie was good", "awful plot", "a fine great movie", "bad"]
    enc = m.tokenize(texts)
    assert enc["input_ids"][0, 0] == 2 and enc["attention_mask"][3].tolist()[:3] == [1, 1, 1]
    with torch.no_grad():
        ref = clf(input_ids=torch.from_numpy(enc["input_ids"]),
                  attention_mask=torch.from_numpy(enc["attention_mask"])).logits.numpy()
    assert m.classify(texts) == [LABELS[str(i)] for i in ref.argmax(1)]
    scored = m.classify(texts, scores=True)
    assert all(0 < p <= 1 for _, p in scored) and [lab for lab, _ in scored] == m.classify(enc)
    with pytest.raises(DeviceError, match="classifier"):
        m.embed(texts)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_predict_text_and_npz(classifier, encoder_bundle, tmp_path):
    bundle, _ = classifier
    r = cli("predict", str(bundle), "--text", "the movie was good", "--text", "awful plot", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["task"] == "classify" and rec["labels"] == Model(bundle).classify(["the movie was good", "awful plot"])
    r = cli("predict", str(bundle), "--text", "great movie", cwd=tmp_path)  # table form: label, score, text
    assert r.returncode == 0 and r.stdout.split("\t")[0] in LABELS.values() and "great movie" in r.stdout
    r = cli("predict", str(encoder_bundle), "--npz", str(encoder_bundle / "inputs" / "samples.npz"), "--json",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["task"] == "embed" and rec["dim"] == 64 and len(rec["embeddings"]) == 4  # the 'real' rows


@pytest.mark.parametrize("args, needle", [
    (["ENC", "--text", "hello"], "this bundle has no tokenizer"),
    (["ENC"], "give the inputs as --text"),
    (["ENC", "--text", "x", "--npz", "f.npz"], "give the inputs as --text"),
    (["ENC", "--npz", "missing.npz"], "not a readable .npz"),
    (["does-not-exist", "--text", "x"], "bundle not found"),
])
def test_cli_predict_bad_input_is_one_line_exit_2(encoder_bundle, tmp_path, args, needle):
    r = cli("predict", *[str(encoder_bundle) if a == "ENC" else a for a in args], cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_copied_bundle_runs_its_package_without_edge_sdk(classifier, tmp_path):
    bundle, _ = classifier
    copy = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(bundle, copy)
    env = {"PATH": os.environ["PATH"]}

    def device(*args: str, python: str = PY) -> subprocess.CompletedProcess:
        return subprocess.run([python, "-I", "-B", "-c", BOOT, *args], capture_output=True, text=True, cwd=copy,
                              env=env, timeout=120)

    r = device("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("bench", "predict", "release", "kill", "probe"))
    r = device("predict", "--bundle", ".", "--text", "good movie", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["labels"] == Model(bundle).classify(["good movie"])
    r = device("bench", "--bundle", ".", "--iterations", "3", "--warmup", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["event"] == "result"
    r = device("predict", "--bundle", ".", "--npz", "nope.npz")
    assert r.returncode == 2 and "not a readable .npz" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list(copy.rglob("__pycache__"))
    bare = Path("/usr/bin/python3")  # a system python without numpy, as on a fresh board
    if bare.is_file():
        r = device("probe", ".", python=str(bare))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["python_executable"] == str(bare)
        if subprocess.run([str(bare), "-c", "import onnxruntime"], capture_output=True).returncode != 0:
            r = device("predict", "--bundle", ".", "--text", "x", python=str(bare))
            assert r.returncode == 4 and "onnxruntime is not installed on this device" in r.stderr
            assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_physical_cores_counts_smt_siblings_once(tmp_path):
    from edge_sdk.device.probe import physical_cores

    # 2 packages x 2 cores, each core with 2 SMT threads: cpu0/cpu4 are siblings, as Linux numbers them
    layout = {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1), 4: (0, 0), 5: (0, 1), 6: (1, 0), 7: (1, 1)}
    for cpu, (package, core) in layout.items():
        d = tmp_path / f"cpu{cpu}" / "topology"
        d.mkdir(parents=True)
        (d / "physical_package_id").write_text(f"{package}\n")
        (d / "core_id").write_text(f"{core}\n")
    assert physical_cores(range(8), sysfs=str(tmp_path)) == 4
    assert physical_cores([0, 4], sysfs=str(tmp_path)) == 1  # pinned to one core's two threads
    assert physical_cores([0, 1, 2], sysfs=str(tmp_path)) == 3
    assert physical_cores([0, 9], sysfs=str(tmp_path)) == 2  # no topology for cpu9: count the CPUs


def test_onnxruntime_engines_spin_within_a_run_and_stop_after_it():
    """Spinning off altogether made MiniLM int8 1.3-1.45x slower here; spinning after a run slows what runs next
    (see engines/base.py). The device package's sessions keep the first and drop the second."""
    import onnxruntime as ort

    from edge_sdk.device.engines.base import ort_session_options

    opts = ort_session_options(ort, 2)
    entries = opts.get_session_config_entry
    assert entries("session.intra_op.allow_spinning") == "1" and entries("session.force_spinning_stop") == "1"
    assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 1
    assert ort_session_options(ort, None).intra_op_num_threads == 0  # onnxruntime's default: physical cores


def test_onnxruntime_runtime_config_is_session_config_entries(encoder_bundle):
    """`calibrate` times kernels with the threads kept spinning between runs (device/calibrate.py), through the same
    engine bundles run with: a runtime_config reaches the session; formats without settings refuse one."""
    from edge_sdk.device.engines import open_engine

    model = str(encoder_bundle / "model" / "model.onnx")
    entry = "session.force_spinning_stop"
    plain = open_engine(model, "onnx", None, 1)
    kept = open_engine(model, "onnx", None, 1, runtime_config={entry: "0"})
    assert plain.session.get_session_options().get_session_config_entry(entry) == "1"
    assert kept.session.get_session_options().get_session_config_entry(entry) == "0"
    with pytest.raises(DeviceError, match="openvino and onnxruntime"):
        open_engine("model.tflite", "tflite", None, 1, runtime_config={entry: "0"})
