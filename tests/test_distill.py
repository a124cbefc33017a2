"""Label-free recovery: distillation pulls a pruned student back towards the teacher within a few steps, respects
its budget, maps layers correctly after layers were dropped, keeps sparsity zeros, and works as a registered pass on
a BuildState (copying the model, never touching the teacher). Calibration text: shipped, held-out-clean."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from edge_sdk.data import load_calibration_texts
from edge_sdk.data.calibration import held_out_sentences, near_copies
from edge_sdk.errors import InputError
from edge_sdk.schemas.passes import DistillConfig, StructuredPruneConfig, UnstructuredSparsityConfig
from edge_sdk.passes.distill import (_QKVCapture, default_layer_map, distill,
                                     distillation_loss, hidden_loss)
from edge_sdk.passes.prune import encoder_shape, structured_prune
from edge_sdk.passes.prune_importance import pooled_embedding
from edge_sdk.passes.prune_surgery import PruningRecord, apply_keep
from edge_sdk.passes.sparsity import apply_sparsity, sparsity_masks

from tiny_models import LAYERS, one_torch_thread, text_inputs, tiny_bert  # noqa: F401

TRAIN = [text_inputs(seed=s, batch=8) for s in range(10, 18)]
HELD_OUT = text_inputs(seed=99, batch=8)


def pruned_student(teacher):
    student = copy.deepcopy(teacher)
    record = structured_prune(student, StructuredPruneConfig(head_ratio=0.5, ffn_ratio=0.5, drop_layers=1),
                              batches=TRAIN[:2])
    return student, record


def cosine(a, b, batch) -> float:
    with torch.no_grad():
        ea = pooled_embedding(a(**batch).last_hidden_state, batch)
        eb = pooled_embedding(b(**batch).last_hidden_state, batch)
    return float((ea * eb).sum(-1).mean())


def test_distillation_reduces_held_out_loss_within_a_few_steps():
    teacher = tiny_bert()
    student, record = pruned_student(teacher)
    cfg = DistillConfig(max_steps=40, learning_rate=2e-3, batch_size=8)
    with torch.no_grad():
        before = float(distillation_loss(student, teacher, HELD_OUT, cfg, record.kept_layers))
    cos_before = cosine(student, teacher, HELD_OUT)
    result = distill(student, teacher, TRAIN, cfg, layer_map=record.kept_layers)
    with torch.no_grad():
        after = float(distillation_loss(student, teacher, HELD_OUT, cfg, record.kept_layers))
    assert result.steps == 40 and result.stopped_by == "max_steps"
    assert after < 0.7 * before, (before, after)
    assert cosine(student, teacher, HELD_OUT) > cos_before
    assert result.last_loss < result.first_loss
    assert encoder_shape(student)["layers"] == LAYERS - 1


def test_teacher_is_never_modified_and_student_grad_flags_are_restored():
    teacher = tiny_bert()
    snapshot = {k: v.clone() for k, v in teacher.state_dict().items()}
    student, record = pruned_student(teacher)
    distill(student, teacher, TRAIN, DistillConfig(max_steps=3), layer_map=record.kept_layers)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in snapshot.items())
    assert all(p.requires_grad for p in student.parameters())
    assert all(p.requires_grad for p in teacher.parameters()) and not teacher.training


def test_time_budget_stops_training():
    teacher = tiny_bert()
    student, record = pruned_student(teacher)
    result = distill(student, teacher, TRAIN, DistillConfig(max_steps=10**6, max_seconds=0.5),
                     layer_map=record.kept_layers)
    assert result.stopped_by == "max_seconds"
    assert 0.5 <= result.seconds < 5 and 0 < result.steps < 10**6


def test_layer_map_follows_the_kept_layers():
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    full = PruningRecord.identity(student)
    kept = apply_keep(student, full, full.model_copy(update={
        "kept_layers": [0, 1], "kept_heads": full.kept_heads[:2], "kept_ffn": full.kept_ffn[:2]}))
    x = HELD_OUT
    with torch.no_grad():
        s = student(**x, output_hidden_states=True).hidden_states
        t = teacher(**x, output_hidden_states=True).hidden_states
    mask = x["attention_mask"].float()
    assert float(hidden_loss(s, t, kept.kept_layers, mask)) == 0.0          # the identical layers line up
    assert default_layer_map(2, 3) != kept.kept_layers
    assert float(hidden_loss(s, t, default_layer_map(2, 3), mask)) > 0.01


def test_attention_relation_loss_is_zero_for_the_teacher_and_positive_after_pruning_heads():
    teacher = tiny_bert()
    cfg = DistillConfig(attention_loss_weight=1.0, hidden_loss_weight=0, embedding_loss_weight=0)
    same = copy.deepcopy(teacher)
    caps = (_QKVCapture(same, LAYERS - 1), _QKVCapture(teacher, LAYERS - 1))
    with torch.no_grad():
        zero = float(distillation_loss(same, teacher, HELD_OUT, cfg, list(range(LAYERS)), *caps))
    student = copy.deepcopy(teacher)
    rec = structured_prune(student, StructuredPruneConfig(head_ratio=0.25), batches=TRAIN[:1])   # 3 of 4 heads
    caps = (_QKVCapture(student, LAYERS - 1), _QKVCapture(teacher, LAYERS - 1))
    with torch.no_grad():
        pos = float(distillation_loss(student, teacher, HELD_OUT, cfg, rec.kept_layers, *caps))
    assert abs(zero) < 1e-6 and pos > 1e-4
    result = distill(student, teacher, TRAIN, cfg.model_copy(update={"max_steps": 15, "learning_rate": 2e-3}),
                     layer_map=rec.kept_layers)
    assert result.last_loss < result.first_loss


def test_sparsity_zeros_survive_recovery():
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    apply_sparsity(student, UnstructuredSparsityConfig(sparsity=0.5))
    masks = sparsity_masks(student)
    distill(student, teacher, TRAIN, DistillConfig(max_steps=5, learning_rate=1e-2), masks=masks)
    params = dict(student.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in masks.items())
    assert any(not torch.equal(params[n], teacher.state_dict()[n]) for n in masks)   # but it did train


# ---- the registered passes on a BuildState --------------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm_tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from edge_sdk.modelspec.sources import builtin_model_dir
    return AutoTokenizer.from_pretrained(builtin_model_dir())


def make_state(tmp_path, tokenizer, lines):
    from edge_sdk.passes.state import BuildState

    teacher = tiny_bert(vocab_size=tokenizer.vocab_size)
    return BuildState(model=teacher, teacher=teacher, tokenizer=tokenizer, work_dir=tmp_path,   # as the build does
                      calibration_texts=tuple(load_calibration_texts(limit=64)), progress=lines.append)


def test_prune_then_distill_as_registered_passes(tmp_path, minilm_tokenizer):
    from edge_sdk.passes.registry import apply_pass

    lines: list[str] = []
    state = make_state(tmp_path, minilm_tokenizer, lines)
    teacher_before = {k: v.clone() for k, v in state.teacher.state_dict().items()}
    prune_cfg = StructuredPruneConfig(head_ratio=0.5, ffn_ratio=0.5, drop_layers=1, calibration_samples=16)
    pruned = apply_pass(prune_cfg, state)
    assert pruned.model is not state.model and encoder_shape(state.model)["layers"] == LAYERS   # input untouched
    assert state.teacher.config.num_hidden_layers == LAYERS
    assert encoder_shape(pruned.model) == {"layers": 2, "heads": [2, 2], "ffn": [32, 32]}
    assert pruned.pruning is not None and any("structured_prune" in l for l in pruned.log)
    assert len(pruned.pruning.kept_layers) == 2 and pruned.pruning.summary().startswith("layers 2/")
    assert not any(isinstance(v, PruningRecord) for v in vars(pruned.model).values())   # in the state, not the module

    recovered = apply_pass(DistillConfig(max_steps=6, batch_size=8, learning_rate=1e-3), pruned)
    assert recovered.model is not pruned.model
    assert encoder_shape(recovered.model) == encoder_shape(pruned.model)
    assert any(l.startswith("distill: 6 steps") for l in recovered.log)
    assert any(l.startswith("distill: step") for l in lines)                       # progress lines were shown
    assert all(torch.equal(v, state.teacher.state_dict()[k]) for k, v in teacher_before.items())

    # gradual pruning is the prune pass's own schedule (increments with recovery between), not distill's
    gradual = apply_pass(prune_cfg.model_copy(update={"increments": 3, "recovery": DistillConfig(max_steps=6,
                                                                                              batch_size=8)}), state)
    assert encoder_shape(gradual.model) == encoder_shape(pruned.model)
    assert sum("gradual 1/3" in l or "gradual 3/3" in l for l in gradual.log) == 2
    assert gradual.pruning is not None and len(gradual.pruning.steps) == 3
    assert all(torch.equal(v, state.teacher.state_dict()[k]) for k, v in teacher_before.items())


def test_distill_pass_needs_a_teacher_and_vision_needs_images(tmp_path):
    from edge_sdk.passes.registry import apply_pass
    from edge_sdk.passes.state import BuildState

    from tiny_models import tiny_vit

    with pytest.raises(InputError, match="teacher"):
        apply_pass(DistillConfig(max_steps=1), BuildState(model=tiny_bert(), teacher=None, tokenizer=None,
                                                          work_dir=tmp_path))
    vit = tiny_vit()
    with pytest.raises(InputError, match="calibration images"):
        apply_pass(DistillConfig(max_steps=1), BuildState(model=vit, teacher=copy.deepcopy(vit), tokenizer=None,
                                                          work_dir=tmp_path, model_kind="vision"))


# ---- calibration text ------------------------------------------------------------------------------------------

def test_shipped_corpus_is_general_english_and_excludes_the_held_out_set():
    texts = load_calibration_texts()
    assert len(texts) > 100_000
    held = {" ".join(s.lower().split()).strip(" .!?") for s in held_out_sentences()}
    assert not held & {" ".join(t.lower().split()).strip(" .!?") for t in texts}
    assert load_calibration_texts(limit=5, seed=1) == load_calibration_texts(limit=5, seed=1)
    assert load_calibration_texts(limit=5, seed=1) != load_calibration_texts(limit=5, seed=2)


def test_recovery_corpus_is_everyday_text_with_no_near_copy_of_a_held_out_sentence(tmp_path):
    import re

    from edge_sdk.passes._inputs import calibration_texts
    from edge_sdk.passes.state import BuildState

    recovery = load_calibration_texts(recovery=True)
    assert 25_000 < len(recovery) < 60_000
    glosses = re.compile(r"^(To \S.* is to |An? \S.* is )")       # the templates WordNet's glosses are written in
    assert sum(bool(glosses.match(t)) for t in recovery) < 0.02 * len(recovery)
    assert sum(bool(glosses.match(t)) for t in load_calibration_texts()) > 0.4 * 165_000
    assert sum(t.endswith("?") for t in recovery) > 0.05 * len(recovery)  # questions, not only statements
    near = [recovery[i] for i in near_copies(recovery, held_out_sentences(), 0.4)]
    assert not near, near[:3]                         # scripts/make-calibration-corpus keeps paraphrases out
    assert near_copies(["Could you pass the salt?"], held_out_sentences(), 0.4)   # a line the writers produced
    (tmp_path / "mine.txt").write_text("first line\nsecond line\n")               # the user's text wins for both
    assert sorted(load_calibration_texts(tmp_path / "mine.txt", recovery=True)) == ["first line", "second line"]
    state = BuildState(model=None, teacher=None, tokenizer=None, work_dir=tmp_path)  # a build without text of its own
    assert calibration_texts(state, recovery=True)[:3] == recovery[:3]
    assert calibration_texts(state)[:3] == load_calibration_texts()[:3]


def test_user_calibration_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_calibration_texts(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(InputError, match="no usable lines"):
        load_calibration_texts(tmp_path / "empty.txt")
    (tmp_path / "mine.txt").write_text("first line\n\n  second   line \n")
    assert sorted(load_calibration_texts(tmp_path / "mine.txt")) == ["first line", "second line"]
