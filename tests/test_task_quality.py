"""Task accuracy in the quality gate: a classifier that flips labels fails on top-1 agreement although its logits'
cosine passes; linear-probe accuracy of embeddings, retained against the uncompressed model; and a small-scale
self-supervised ViT on scikit-learn's digits built through `edge-sdk build --task-data`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edge_sdk
from edge_sdk.errors import InputError, QualityGateError
from edge_sdk.quality import TaskData, check, evaluate, evaluate_task, failures, metric, stratified_split

ROOT = Path(__file__).resolve().parents[1]


def _classifier_fns(bits: int):
    """A linear classifier (32 features → 10 classes) and the same classifier with its weights rounded to `bits`-bit
    symmetric per-tensor integers: what weight quantization does to it. Both say they return logits."""
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(32, 10)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(10, 32, generator=g))
        layer.bias.zero_()
    q = 2 ** (bits - 1) - 1
    scale = layer.weight.abs().max() / q
    quant = torch.nn.Linear(32, 10)
    with torch.no_grad():
        quant.weight.copy_(torch.round(layer.weight / scale) * scale)
        quant.bias.zero_()

    def fn(module):
        def run(xs):
            with torch.no_grad():
                return module(torch.as_tensor(np.asarray(xs, dtype=np.float32))).numpy()
        run.output = "logits"
        return run
    return fn(layer), fn(quant)


def test_a_classifier_that_flips_labels_fails_on_top1_although_cosine_passes():
    inputs = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
    reference, candidate = _classifier_fns(bits=5)
    rep = evaluate(reference, candidate, inputs, max_quality_drop=0.02)
    cos, top1 = metric(rep, "mean_cosine"), metric(rep, "top1_agreement")
    assert cos > 0.99                    # the cosine alone (the old gate) would pass this build…
    assert 0.9 < top1 < 0.95             # …which flips 5-10 % of the labels (7.6 %)
    assert not rep.passed and rep.failed == [f"top-1 agreement {top1:.4f} < 0.9800"]
    with pytest.raises(QualityGateError, match=r"top-1 agreement 0\.9\d+ < 0\.9800") as info:
        check(rep, 0.02, label="int5 plan")
    assert info.value.exit_code == 4 and "mean_cosine" in str(info.value)
    assert check(rep, 0.1).passed        # the knob is the same one: 1 - top1 within 0.1 passes


def test_classifier_task_accuracy_and_agreement_on_labelled_data():
    inputs = np.random.default_rng(1).normal(size=(400, 32)).astype(np.float32)
    reference, candidate = _classifier_fns(bits=4)
    truth = reference(inputs).argmax(1)                   # labels the uncompressed model gets all right
    names = {str(i): f"class-{i}" for i in range(10)}
    task = TaskData("digits-like", inputs, *_encode([names[str(int(y))] for y in truth]))
    rep = evaluate(reference, candidate, inputs[:50], max_quality_drop=0.02, task_data=task, id2label=names)
    t = rep.task
    assert t.method == "classifier" and t.reference_accuracy == 1.0 and t.test_samples == 400
    assert t.candidate_accuracy == pytest.approx(t.top1_agreement) and t.retained == t.candidate_accuracy
    assert metric(rep, "task_accuracy_retained") == t.retained < 0.98
    assert any(f.startswith("task accuracy retained") for f in rep.failed)
    assert any(f.startswith("top-1 agreement on the task data") for f in rep.failed)
    with pytest.raises(InputError, match="label 'cat' is not a class of this classifier"):
        evaluate_task(reference(inputs[:4]), candidate(inputs[:4]),
                      TaskData("t", inputs[:4], *_encode(["cat", "dog", "cat", "dog"])), classifier=True,
                      id2label=names)


def _encode(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(labels))
    return np.array([classes.index(x) for x in labels]), classes


def _anisotropic_embeddings(n_per_class: int = 60, seed: int = 0):
    """Embeddings like many real encoders' CLS vectors: one large shared direction plus a small class signal."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    common = rng.normal(size=16)
    centers = rng.normal(size=(3, 16))
    signal = centers[labels] + 0.3 * rng.normal(size=(len(labels), 16))
    return labels, common, signal, rng


def test_linear_probe_retained_catches_lost_class_information_that_cosine_misses():
    labels, common, signal, rng = _anisotropic_embeddings()
    ref = 12 * common + signal
    kept = 12 * common + signal + 0.1 * rng.normal(size=signal.shape)          # compression noise, information kept
    lost = 12 * common + 1.2 * rng.normal(size=signal.shape)                   # class signal replaced by noise
    task = TaskData("clusters", ref, labels, ["a", "b", "c"])
    ok = evaluate(ref, lambda xs: kept, ref, max_quality_drop=0.02, task_data=task, task_reference=ref)
    bad = evaluate(ref, lambda xs: lost, ref, max_quality_drop=0.02, task_data=task, task_reference=ref)
    assert ok.passed and ok.task.method == "linear_probe" and ok.task.retained >= 0.98
    assert ok.task.train_samples == ok.task.test_samples == 90                 # half and half per class
    assert metric(bad, "mean_cosine") > 0.98                                  # cosine alone passes it…
    assert bad.task.candidate_accuracy < 0.6 and not bad.passed               # …the probe does not
    assert bad.failed == [f"task accuracy retained {bad.task.retained:.4f} < 0.9800"]
    assert bad.task.candidate_refit_accuracy is not None and ok.task.reference_accuracy > 0.95
    assert failures(ok, 0.02) == []


def test_stratified_split_is_deterministic_and_respects_a_given_mask():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    tr, te = stratified_split(labels)
    assert np.array_equal(tr, stratified_split(labels)[0]) and not set(tr) & set(te)
    assert sorted(np.concatenate([tr, te])) == list(range(17))
    assert [int((labels[te] == c).sum()) for c in range(3)] == [5, 2, 1]      # every class on both sides
    mask = np.arange(17) < 12
    tr, te = stratified_split(labels, mask)
    assert list(tr) == list(range(12)) and list(te) == list(range(12, 17))


# ------------------------------------------------------------------- the SSL digits example, on a small scale
def _example():
    spec = importlib.util.spec_from_file_location("ssl_vit_digits", ROOT / "examples" / "ssl_vit_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(600)
def test_small_ssl_vit_on_digits_builds_with_task_data(tmp_path):
    """A few SimCLR steps on the real digits, saved with save_pretrained, then `edge-sdk build --task-data` with
    the images as --eval-data / --calibration-data arrays: the manifest carries the linear-probe accuracies."""
    ex = _example()
    torch.set_num_threads(1)
    pixels, labels = ex.digits_pixels()
    assert pixels.shape == (1797, 1, 32, 32) and set(labels) == set(range(10))
    train, test = stratified_split(labels, test_fraction=ex.TEST_FRACTION, seed=0)
    model = ex.pretrain(pixels[train], steps=10, batch_size=64, log=lambda s: None)
    model.save_pretrained(tmp_path / "vit")
    files = ex.write_data(tmp_path / "data", pixels, labels, train, test)
    plans = edge_sdk.plan(str(tmp_path / "vit"), device="host", runtime="onnxruntime", top=10)
    int8 = next(p for p in plans.plans if p.precision == "int8_dynamic" and [c.kind for c in p.passes] ==
                ["export_onnx", "quantize_onnx"])          # no pruning: seconds, not minutes of recovery
    (tmp_path / "plan.json").write_text(int8.model_dump_json())
    # a budget this loose only so that 10 steps of pretraining always pass; the numbers are what is checked
    r = subprocess.run([sys.executable, "-m", "edge_sdk", "build", "--plan", str(tmp_path / "plan.json"),
                        "--eval-data", str(files["eval"]), "--calibration-data", str(files["calibration"]),
                        "--task-data", str(files["task"]), "--max-quality-drop", "0.9", "--no-archive",
                        "-o", str(tmp_path / "b"), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=540)
    assert r.returncode == 0, r.stderr[-3000:]
    q = json.loads(r.stdout)["manifest"]["quality"]
    t = q["task"]
    assert t["method"] == "linear_probe" and (t["train_samples"], t["test_samples"]) == (len(train), len(test))
    assert t["reference_accuracy"] > 0.5                                       # even 10 steps: far above chance
    assert abs(t["retained"] - t["candidate_accuracy"] / t["reference_accuracy"]) < 1e-9
    names = {m["name"] for m in q["metrics"]}
    assert {"mean_cosine", "task_accuracy", "task_accuracy_retained"} <= names
    assert q["samples"] == len(test) and "eval_images.npy" in q["eval_data"]


def test_text_classifier_build_gates_on_labelled_texts(tmp_path):
    """A BERT sequence classifier with named labels, built with a .jsonl of labelled sentences: labels are read by
    the model's id2label names; top-1 agreement and task accuracy land in the manifest."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from edge_sdk.modelspec.sources import builtin_model_dir
    from edge_sdk.quality import builtin_sentences

    tok = AutoTokenizer.from_pretrained(builtin_model_dir())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=2,
                     id2label={0: "statement", 1: "question"}, label2id={"statement": 0, "question": 1})
    model_dir = tmp_path / "clf"
    BertForSequenceClassification(cfg).eval().save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    texts = builtin_sentences().inputs[:80]
    (tmp_path / "task.jsonl").write_text("".join(
        json.dumps({"text": t, "label": "question" if t.endswith("?") else "statement"}) + "\n" for t in texts))
    plans = edge_sdk.plan(str(model_dir), device="host", runtime="onnxruntime", top=10)
    int8 = next(p for p in plans.runnable() if [c.kind for c in p.passes] == ["export_onnx", "quantize_onnx"])
    b = edge_sdk.build(int8, out_dir=tmp_path / "b", task_data=tmp_path / "task.jsonl", eval_samples=24,
                       max_quality_drop=0.9, archive=False)   # random weights: the numbers, not their level
    q = b.manifest.quality
    assert q.task.method == "classifier" and q.task.test_samples == 80 and q.task.train_samples == 0
    assert {"top1_agreement", "task_top1_agreement", "task_accuracy", "task_accuracy_retained"} <= \
        {m.name for m in q.metrics}
    assert metric(q, "task_top1_agreement") == q.task.top1_agreement
