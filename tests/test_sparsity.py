"""Magnitude sparsity: it reaches the requested fraction, keeps the largest weights, leaves no masks or hooks
behind (permanent), and 2:4 really is "the 2 largest of every 4 consecutive input weights"."""

from __future__ import annotations

import pytest
import torch

from edge_sdk.errors import InputError
from edge_sdk.schemas.passes import UnstructuredSparsityConfig
from edge_sdk.passes.sparsity import apply_sparsity, reapply_masks, sparsity_masks, target_linears

from tiny_models import one_torch_thread, text_inputs, tiny_bert  # noqa: F401


def no_pruning_leftovers(model) -> bool:
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    hooks = any(m._forward_pre_hooks for m in model.modules())
    parametrized = any(hasattr(m, "parametrizations") for m in model.modules())
    return not hooks and not parametrized and not any(n.endswith(("_orig", "_mask")) for n in names)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
def test_unstructured_reaches_the_target_and_is_permanent(scope, fraction):
    model = tiny_bert()
    before = {n: m.weight.detach().clone() for n, m in target_linears(model)}
    result = apply_sparsity(model, UnstructuredSparsityConfig(sparsity=fraction, scope=scope))
    total = sum(w.numel() for w in before.values())
    zeros = sum(int((m.weight == 0).sum()) for _, m in target_linears(model))
    assert abs(zeros / total - fraction) < 1.5 / 64 and abs(result["sparsity"] - fraction) < 1.5 / 64
    assert no_pruning_leftovers(model)
    for name, mod in target_linears(model):
        w0, w = before[name], mod.weight.detach()
        assert torch.equal(w[w != 0], w0[w != 0])                   # survivors untouched
        if scope == "layer":                                         # the smallest magnitudes went
            assert w0[w == 0].abs().max() <= w0[w != 0].abs().min()
    assert torch.equal(model.embeddings.word_embeddings.weight, tiny_bert().embeddings.word_embeddings.weight)
    with torch.no_grad():
        model(**text_inputs())


def test_two_four_pattern_keeps_the_two_largest_of_every_four():
    model = tiny_bert()
    before = {n: m.weight.detach().clone() for n, m in target_linears(model)}
    result = apply_sparsity(model, UnstructuredSparsityConfig(sparsity=0.5, pattern="2:4"))
    assert result["sparsity"] == 0.5 and no_pruning_leftovers(model)
    for name, mod in target_linears(model):
        w0 = before[name]
        groups = mod.weight.detach().view(w0.shape[0], -1, 4)
        assert ((groups != 0).sum(-1) == 2).all(), name
        reference = torch.zeros_like(w0).view_as(groups)
        reference.scatter_(-1, w0.view_as(groups).abs().topk(2, dim=-1).indices, 1.0)
        assert torch.equal((groups != 0).float(), reference), name    # hand-computed top-2-of-4


def test_two_four_needs_half_and_masks_survive_reapplication():
    with pytest.raises(InputError, match="2:4"):
        apply_sparsity(tiny_bert(), UnstructuredSparsityConfig(sparsity=0.75, pattern="2:4"))
    model = tiny_bert()
    apply_sparsity(model, UnstructuredSparsityConfig(sparsity=0.5))
    masks = sparsity_masks(model)
    assert len(masks) == len(target_linears(model))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)                                            # a training step would fill the zeros
    reapply_masks(model, masks)
    assert all(bool((dict(model.named_parameters())[n][~m] == 0).all()) for n, m in masks.items())
