"""Quality: shipped evaluation data, the user's --eval-data file, metrics on arrays with known answers, and the
gate — including one run against a real onnxruntime session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_sdk.errors import InputError, QualityGateError
from edge_sdk.quality import (builtin_sentences, check, evaluate, load_eval_data, metric, onnx_embed_fn,
                              synthetic_images, torch_embed_fn)
from edge_sdk.quality.metrics import (cosine_per_sample, mean_cosine, rankdata, similarity_spearman, spearman,
                                      top1_agreement)


# ------------------------------------------------------------------------------------------- evaluation data
def test_builtin_sentences_are_many_distinct_and_varied():
    ev = builtin_sentences()
    assert len(ev) >= 300
    assert len(set(ev.inputs)) == len(ev.inputs)
    lengths = [len(s.split()) for s in ev.inputs]
    assert min(lengths) <= 3 and max(lengths) >= 30          # short and long
    assert sum(s.endswith("?") for s in ev.inputs) >= 15      # questions
    assert sum(s.startswith('"') for s in ev.inputs) >= 10    # dialogue


def test_builtin_subset_is_deterministic_and_spread():
    a, b = builtin_sentences(64), builtin_sentences(64)
    assert a.inputs == b.inputs and len(a) == 64 and a.name.startswith("builtin eval_sentences.txt (64 of")
    everything = builtin_sentences().inputs
    # spread over the whole file, not its first 64 lines
    assert everything.index(a.inputs[-1]) > len(everything) - 10


@pytest.mark.parametrize("content,expected", [
    (None, "no such file"),
    (b"", "empty"),
    (b"\n   \n\t\n", "empty"),
    (b"hello\x00world\n", "binary"),
    ("caf\u00e9 au lait\n".encode("latin-1"), "not valid UTF-8"),
])
def test_eval_data_errors_name_the_file(tmp_path, content, expected):
    path = tmp_path / "my inputs.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as info:
        load_eval_data(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and info.value.exit_code == 2


def test_eval_data_directory_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a regular file"):
        load_eval_data(tmp_path)


def test_eval_data_reads_utf8_lines(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("\ufeffFirst line.\n\n  Second — with a dash.  \r\nThird\n", encoding="utf-8")
    ev = load_eval_data(path)
    assert ev.inputs == ["First line.", "Second — with a dash.", "Third"]
    assert str(path) in ev.name and "3 of 3" in ev.name
    assert load_eval_data(path, n=2).inputs == ["First line.", "Third"]


def test_synthetic_images_are_deterministic_and_varied():
    a = synthetic_images(8, image_size=32)
    b = synthetic_images(8, image_size=32)
    c = synthetic_images(8, image_size=32, seed=1)
    assert a.inputs.shape == (8, 3, 32, 32) and a.inputs.dtype == np.float32
    assert np.array_equal(a.inputs, b.inputs) and not np.array_equal(a.inputs, c.inputs)
    assert a.inputs.min() >= -1 and a.inputs.max() <= 1
    assert len({float(x.std()) for x in a.inputs}) == 8        # no two identical images
    assert "synthetic" in a.name


# --------------------------------------------------------------------------------------------- metrics
def test_rankdata_averages_ties():
    np.testing.assert_array_equal(rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])


def test_spearman_known_values():
    x = np.arange(10.0)
    assert spearman(x, x ** 3) == pytest.approx(1.0)          # monotonic, not linear
    assert spearman(x, -x) == pytest.approx(-1.0)
    # textbook example: d = rank differences (0, 1, -1, 0, 0) → rho = 1 - 6*2/(5*24) = 0.9
    assert spearman([1, 2, 3, 4, 5], [1, 3, 2, 4, 5]) == pytest.approx(0.9)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 8, 200), rng.integers(0, 8, 200) + rng.integers(0, 3, 200)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_cosine_top1_and_similarity_ranking():
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_cosine(ref, ref * 3) == pytest.approx(1.0)     # scale does not matter
    np.testing.assert_allclose(cosine_per_sample(ref, ref[:, ::-1]), [0, 0, 1], atol=1e-12)
    assert top1_agreement(np.array([[2, 1], [0, 3]]), np.array([[5, 1], [4, 3]])) == 0.5
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((40, 16))
    assert similarity_spearman(emb, emb) == pytest.approx(1.0)
    assert similarity_spearman(emb, emb + 0.1 * rng.standard_normal(emb.shape)) > 0.95
    assert abs(similarity_spearman(emb, rng.standard_normal(emb.shape))) < 0.2
    with pytest.raises(ValueError, match="shape"):
        mean_cosine(ref, ref[:2])
    with pytest.raises(ValueError, match="non-finite"):
        mean_cosine(ref, ref * np.nan)


# ------------------------------------------------------------------------------------------------- the gate
def _noisy(scale: float):
    """A candidate whose outputs are the reference's plus noise of a known size (a stand-in for compression)."""
    def run(inputs):
        ref = _reference(inputs)
        return ref + scale * np.random.default_rng(1).standard_normal(ref.shape)
    return run


def _reference(inputs):
    return np.stack([np.random.default_rng(len(s) * 7919 + i).standard_normal(32) for i, s in enumerate(inputs)])


def test_gate_passes_within_budget_and_raises_over_it():
    ev = builtin_sentences(40)
    close = evaluate(_reference, _noisy(0.05), ev)
    assert close.passed and close.max_quality_drop is None and close.samples == 40
    assert {m.name for m in close.metrics} == {"mean_cosine", "min_cosine", "spearman"}
    assert close.cosine_drop == pytest.approx(1 - metric(close, "mean_cosine"))
    assert check(close, 0.01).passed and check(close, 0.01).max_quality_drop == 0.01

    again = evaluate(_reference(ev.inputs), _noisy(0.05), ev)    # precomputed reference outputs
    assert again.cosine_drop == pytest.approx(close.cosine_drop)

    far = evaluate(_reference, _noisy(0.5), ev, max_quality_drop=0.01)
    assert not far.passed and far.cosine_drop > 0.05
    with pytest.raises(QualityGateError) as info:
        check(far, 0.01, label="int8 plan")
    msg = str(info.value)
    assert info.value.exit_code == 4 and "\n" not in msg
    assert f"{far.cosine_drop:.4f}" in msg and "0.01" in msg and "spearman" in msg and ev.name in msg


def test_gate_reports_top1_for_classifiers():
    logits = lambda xs: np.array([[float(i % 3 == k) for k in range(3)] for i in range(len(xs))])  # noqa: E731
    flipped = lambda xs: logits(xs)[:, ::-1]  # noqa: E731
    rep = evaluate(logits, flipped, ["a", "b", "c", "d", "e", "f"], task="classification")
    assert metric(rep, "top1_agreement") == pytest.approx(2 / 6)   # class 1 stays in the middle


def test_gate_on_a_real_onnx_artifact(tmp_path):
    """torch reference vs the exported file in onnxruntime: the same function, so the drop is ~0; a model
    with other weights must fail the gate."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from edge_sdk.modelspec.sources import builtin_model_dir
    from edge_sdk.passes.export_onnx import export_onnx

    tok = AutoTokenizer.from_pretrained(builtin_model_dir())
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=128), add_pooling_layer=False).eval()
    good = export_onnx(model, tmp_path / "good.onnx", tokenizer=tok).path
    ev = builtin_sentences(24)
    reference = torch_embed_fn(model, tok)
    rep = check(evaluate(reference, onnx_embed_fn(good, tok), ev), 1e-4)
    assert metric(rep, "mean_cosine") > 0.9999 and metric(rep, "spearman") > 0.999
    assert reference.output == "embeddings"

    # a candidate that is not the reference (other weights: what a broken compression amounts to) must fail
    torch.manual_seed(1)
    other = BertModel(model.config, add_pooling_layer=False).eval()
    bad = export_onnx(other, tmp_path / "bad.onnx", tokenizer=tok).path
    with pytest.raises(QualityGateError):
        check(evaluate(reference, onnx_embed_fn(bad, tok), ev), 0.01)
