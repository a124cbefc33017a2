"""A plan's pass list is exactly what runs: every pass works on the BuildState it receives, and pass outputs (the
pruning record, sparsity masks) live in the state, not on the nn.Module."""

from __future__ import annotations

import copy
import os

import pytest
import torch
from pydantic import ValidationError

from edge_sdk.data import load_calibration_texts
from edge_sdk.passes.prune import encoder_shape
from edge_sdk.passes.prune_surgery import PruningRecord, apply_keep
from edge_sdk.passes.pruned_io import load_pruned, save_pruned
from edge_sdk.passes.registry import apply_pass
from edge_sdk.passes.state import BuildState
from edge_sdk.schemas.passes import DistillConfig, StructuredPruneConfig, UnstructuredSparsityConfig

from tiny_models import one_torch_thread, text_inputs, tiny_bert  # noqa: F401


def _no_pass_output_on(module: torch.nn.Module) -> None:
    for mod in module.modules():
        for value in vars(mod).values():
            assert not isinstance(value, PruningRecord)
        assert not [k for k in vars(mod) if k.startswith("edge_sdk")]


@pytest.fixture(scope="module")
def tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from edge_sdk.modelspec.sources import builtin_model_dir
    return AutoTokenizer.from_pretrained(builtin_model_dir())


def _state(tmp_path, tokenizer=None) -> BuildState:
    teacher = tiny_bert(vocab_size=tokenizer.vocab_size) if tokenizer is not None else tiny_bert()
    return BuildState(model=teacher, teacher=teacher, tokenizer=tokenizer, work_dir=tmp_path,
                      calibration_texts=tuple(load_calibration_texts(limit=32)))


def test_prune_then_distill_keeps_the_pruned_architecture(tmp_path, tokenizer):
    """`[structured_prune]` then `[distill]`: distill recovers the model it receives and never re-prunes."""
    state = _state(tmp_path, tokenizer)
    prune = StructuredPruneConfig(head_ratio=0.5, ffn_ratio=0.5, drop_layers=1, importance="weight_norm")
    pruned = apply_pass(prune, state)
    assert isinstance(pruned.pruning, PruningRecord) and state.pruning is None
    _no_pass_output_on(pruned.model)

    # A pruned model that re-pruning from the teacher could never reproduce: other heads kept, marked weights.
    odd = pruned.pruning.model_copy(update={"kept_heads": [[h[-1]] for h in pruned.pruning.kept_heads]})
    model = copy.deepcopy(pruned.model)
    apply_keep(model, pruned.pruning, odd)
    with torch.no_grad():
        next(model.parameters()).fill_(0.123)
    handmade = pruned.evolve(model=model, pruning=odd)

    same = apply_pass(DistillConfig(max_steps=0), handmade)
    assert same.pruning is odd                                                    # the record is not redone
    assert encoder_shape(same.model) == encoder_shape(model) == {"layers": 2, "heads": [1, 1], "ffn": [32, 32]}
    assert same.model is not model
    assert all(torch.equal(a, b) for a, b in zip(same.model.parameters(), model.parameters()))   # starts from it

    trained = apply_pass(DistillConfig(max_steps=2, batch_size=8), handmade)
    assert encoder_shape(trained.model) == encoder_shape(model) and trained.pruning is odd
    _no_pass_output_on(trained.model)


def test_distill_refuses_the_old_gradual_schedule_and_points_at_the_prune_pass():
    assert DistillConfig.model_validate({"gradual_steps": 1}) == DistillConfig()    # plans saved before: accepted
    with pytest.raises(ValidationError, match="structured_prune.increments=3"):
        DistillConfig.model_validate({"gradual_steps": 3})
    with pytest.raises(ValidationError, match="recovery"):
        StructuredPruneConfig(increments=2)


def test_sparsity_masks_live_in_the_state_and_distill_keeps_them(tmp_path, tokenizer):
    state = _state(tmp_path, tokenizer)
    sparse = apply_pass(UnstructuredSparsityConfig(sparsity=0.5), state)
    assert sparse.sparsity_masks and state.sparsity_masks is None
    _no_pass_output_on(sparse.model)
    params = dict(sparse.model.named_parameters())
    assert all(torch.equal(m, params[n] != 0) for n, m in sparse.sparsity_masks.items())
    recovered = apply_pass(DistillConfig(max_steps=3, batch_size=8, learning_rate=1e-3), sparse)
    after = dict(recovered.model.named_parameters())
    assert all(bool((after[n][~m] == 0).all()) for n, m in sparse.sparsity_masks.items())      # zeros kept
    assert any(not torch.equal(after[n], params[n]) for n in sparse.sparsity_masks)            # and it trained


def test_record_from_the_state_saves_and_loads(tmp_path):
    state = _state(tmp_path)
    pruned = apply_pass(StructuredPruneConfig(head_ratio=0.25, ffn_ratio=0.5, drop_layers=1,
                                              importance="weight_norm"), state)
    save_pruned(pruned.model, pruned.pruning, tmp_path / "pruned")
    loaded, record = load_pruned(tmp_path / "pruned")
    assert record == pruned.pruning
    x = text_inputs(seed=3)
    with torch.no_grad():
        assert torch.equal(loaded(**x).last_hidden_state, pruned.model(**x).last_hidden_state)


def test_a_second_prune_pass_continues_from_the_state_record(tmp_path):
    state = _state(tmp_path)
    first = apply_pass(StructuredPruneConfig(ffn_ratio=0.25, importance="weight_norm"), state)
    second = apply_pass(StructuredPruneConfig(ffn_ratio=0.5, importance="weight_norm"), first)
    assert len(second.pruning.steps) == 2
    assert all(set(b) <= set(a) for a, b in zip(first.pruning.kept_ffn, second.pruning.kept_ffn))
