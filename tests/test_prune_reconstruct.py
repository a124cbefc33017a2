"""Least-squares weight reconstruction after a structured cut: every layer's FFN down projection is refitted to what
the unpruned model computes, which lowers each layer's error and brings the output back towards the teacher's; it
keeps the layer map when layers were dropped, leaves an exact (nothing pruned) model alone, and the prune pass
records it and skips it where it would be wrong (sparsified models, weight-norm importance)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from edge_sdk.arch import base_model
from edge_sdk.passes.prune import structured_prune
from edge_sdk.passes.prune_reconstruct import reconstruct_ffn
from edge_sdk.passes.prune_surgery import layout_of
from edge_sdk.schemas.passes import StructuredPruneConfig

from tiny_models import image_inputs, one_torch_thread, text_inputs, tiny_bert, tiny_vit  # noqa: F401

MODELS = {"bert": (tiny_bert, text_inputs), "vit": (tiny_vit, image_inputs)}


def data(family: str, n: int, seed0: int) -> list[dict]:
    """Many more tokens than FFN neurons (64), so the least-squares fit is determined."""
    _, inputs = MODELS[family]
    return [inputs(seed=seed0 + i, batch=16) for i in range(n)]


def cosine_to(teacher, student, batches) -> float:
    """Mean cosine of the final hidden states over real tokens (what the layers' errors add up to)."""
    with torch.no_grad():
        cs = []
        for b in batches:
            t, s = teacher(**b).last_hidden_state, student(**b).last_hidden_state
            mask = b.get("attention_mask")
            c = F.cosine_similarity(t, s, dim=-1)
            cs.append(c[mask.bool()] if mask is not None else c.flatten())
        return float(torch.cat(cs).mean())


def down_weights(model) -> list[torch.Tensor]:
    layout = layout_of(model)
    return [getattr(*layout.ffn(layer)[1]).weight.detach().clone() for layer in layout.layers(base_model(model))]


@pytest.mark.parametrize("family", ["bert", "vit"])
def test_refit_lowers_every_layers_error_and_brings_the_output_back_on_unseen_inputs(family):
    build, _ = MODELS[family]
    teacher = build()
    fit_data, check = data(family, 8, 100), data(family, 4, 500)      # disjoint seeds: checked on unseen inputs
    cut = copy.deepcopy(teacher)
    record = structured_prune(cut, StructuredPruneConfig(ffn_ratio=0.5, importance="activation"), batches=fit_data)
    refit = copy.deepcopy(cut)
    fits = reconstruct_ffn(refit, teacher, record.kept_layers, fit_data)
    assert len(fits) == len(record.kept_layers)
    for f in fits:
        assert f.tokens > 4 * f.neurons
        assert f.error_after < f.error_before, f
    before, after = cosine_to(teacher, cut, check), cosine_to(teacher, refit, check)
    assert after > before, (before, after)
    assert all(not torch.equal(a, b) for a, b in zip(down_weights(cut), down_weights(refit)))


def test_refit_follows_the_layer_map_after_a_layer_is_dropped():
    teacher = tiny_bert()
    fit_data, check = data("bert", 8, 100), data("bert", 4, 500)
    cut = copy.deepcopy(teacher)
    record = structured_prune(cut, StructuredPruneConfig(ffn_ratio=0.25, drop_layers=1, importance="activation"),
                              batches=fit_data)
    assert len(record.kept_layers) == 2
    good, wrong = copy.deepcopy(cut), copy.deepcopy(cut)
    reconstruct_ffn(good, teacher, record.kept_layers, fit_data)
    with pytest.raises(ValueError, match="layer_map"):
        reconstruct_ffn(wrong, teacher, [0, 1, 2], fit_data)
    assert cosine_to(teacher, good, check) > cosine_to(teacher, cut, check)


def test_an_unpruned_model_is_already_the_least_squares_solution():
    """Nothing cut: the refit must give (almost) the weights back, not drift because of the ridge or the weighting."""
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    fits = reconstruct_ffn(student, teacher, [0, 1, 2], data("bert", 6, 100))
    for f in fits:   # layer 0 starts exact; above it, only what the ridge moved below (tiny) is left to absorb
        assert f.error_before < 1e-3 and f.error_after < 1e-3, f
    assert fits[0].error_before < 1e-9
    x = text_inputs(seed=900)
    assert cosine_to(teacher, student, [x]) > 0.9999


def test_too_few_tokens_leave_the_layer_as_cut():
    teacher = tiny_bert()
    cut = copy.deepcopy(teacher)
    record = structured_prune(cut, StructuredPruneConfig(ffn_ratio=0.5, importance="activation"),
                              batches=data("bert", 2, 100))
    before, lines = down_weights(cut), []
    fits = reconstruct_ffn(cut, teacher, record.kept_layers, [text_inputs(seed=3, batch=2, length=12)],
                           log=lines.append)
    assert fits == [] and all(torch.equal(a, b) for a, b in zip(before, down_weights(cut)))
    assert len(lines) == 3 and "too few to refit" in lines[0]


def test_prune_refits_only_with_a_teacher_and_data_driven_scores():
    teacher = tiny_bert()
    fit_data = data("bert", 6, 100)
    cfg = StructuredPruneConfig(ffn_ratio=0.5, importance="activation")
    plain, refit = copy.deepcopy(teacher), copy.deepcopy(teacher)
    r_plain = structured_prune(plain, cfg, batches=fit_data)
    r_refit = structured_prune(refit, cfg, batches=fit_data, teacher=teacher, reconstruct=fit_data)
    assert r_plain.steps[-1]["reconstructed"] is False and r_refit.steps[-1]["reconstructed"] is True
    assert r_plain.kept_ffn == r_refit.kept_ffn                      # the same cut, only the weights differ
    assert not torch.equal(down_weights(plain)[0], down_weights(refit)[0])
    blind = copy.deepcopy(teacher)
    r_blind = structured_prune(blind, cfg.model_copy(update={"importance": "weight_norm"}), batches=None,
                               teacher=teacher, reconstruct=fit_data)
    assert r_blind.steps[-1]["reconstructed"] is False


def test_pass_skips_the_refit_for_a_sparsified_model_and_when_turned_off(tmp_path):
    """A dense solve would fill in the zeros a sparsity pass made; reconstruct_samples=0 turns it off."""
    from edge_sdk.passes.prune import apply
    from edge_sdk.passes.state import BuildState

    teacher = tiny_bert()
    texts = ["the cat sat on the mat", "a quick brown fox jumps", "edge devices run small models"] * 20

    class Tok:   # the pass tokenises calibration text; a fixed vocabulary keeps it offline and tiny
        def __call__(self, batch, **kw):
            ids = [[sum(map(ord, w)) % 100 + 1 for w in t.split()][:kw.get("max_length", 16)] for t in batch]
            n = max(len(i) for i in ids)
            return {"input_ids": torch.tensor([i + [0] * (n - len(i)) for i in ids]),
                    "attention_mask": torch.tensor([[1] * len(i) + [0] * (n - len(i)) for i in ids])}

    def state(**kw):
        return BuildState(model=teacher, teacher=teacher, tokenizer=Tok(), work_dir=tmp_path,
                          calibration_texts=texts, **kw)

    cfg = StructuredPruneConfig(ffn_ratio=0.5, importance="activation", calibration_samples=8, reconstruct_samples=32)
    assert apply(cfg, state()).pruning.steps[-1]["reconstructed"] is True
    off = cfg.model_copy(update={"reconstruct_samples": 0})
    assert apply(off, state()).pruning.steps[-1]["reconstructed"] is False
    masks = {"encoder.layer.0.output.dense.weight": torch.ones(32, 64, dtype=torch.bool)}
    assert apply(cfg, state(sparsity_masks=masks)).pruning.steps[-1]["reconstructed"] is False
