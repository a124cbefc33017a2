"""Recovery that makes pruning worth it: the LR schedule's shape, MiniLM-v2 attention relations on every layer,
frozen embeddings, gradual budgets, the whole corpus for training, and the planner's quality prior as a function of
the recovery budget (`--recovery-minutes` is part of the plan)."""

from __future__ import annotations

import copy

import pytest
import torch

from edge_sdk.errors import InputError
from edge_sdk.passes.distill import (_QKVCapture, attention_relation_loss, distill, lr_factor, relation_heads)
from edge_sdk.passes.prune import increment_shares, prune_gradually, structured_prune
from edge_sdk.passes.prune_importance import pooled_embedding
from edge_sdk.planner import Constraints, plan_for_profile, priors
from edge_sdk.planner.search import predict_plan
from edge_sdk.schemas.passes import DistillConfig, StructuredPruneConfig

from tiny_models import LAYERS, one_torch_thread, text_inputs, tiny_bert  # noqa: F401

TRAIN = [text_inputs(seed=s, batch=8) for s in range(10, 18)]
HELD_OUT = text_inputs(seed=99, batch=8)


def cosine(a, b, batch=HELD_OUT) -> float:
    with torch.no_grad():
        ea = pooled_embedding(a(**batch).last_hidden_state, batch)
        eb = pooled_embedding(b(**batch).last_hidden_state, batch)
    return float((ea * eb).sum(-1).mean())


# ---- the learning-rate schedule -----------------------------------------------------------------------------

def test_lr_warms_up_linearly_then_decays_to_the_floor():
    assert lr_factor(0.0, 0.1) == 0.0
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    cos = [lr_factor(d / 100, 0.1, "cosine") for d in range(10, 101)]
    assert all(a >= b for a, b in zip(cos, cos[1:])) and cos[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0.55, 0.1, "cosine") == pytest.approx(0.5)                 # half way down at mid-decay
    assert lr_factor(0.55, 0.1, "linear") == pytest.approx(0.5)
    assert lr_factor(0.3, 0.1, "cosine") > lr_factor(0.3, 0.1, "linear")       # cosine stays high for longer
    assert lr_factor(1.0, 0.1, "linear", floor=0.1) == pytest.approx(0.1)
    assert lr_factor(0.7, 0.1, "constant") == 1.0 and lr_factor(2.0, 0.0) == pytest.approx(0.0, abs=1e-12)


def test_distill_follows_the_schedule_step_by_step():
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    structured_prune(student, StructuredPruneConfig(ffn_ratio=0.5), batches=TRAIN[:1])
    lrs: list[float] = []
    distill(student, teacher, TRAIN, DistillConfig(max_steps=20, learning_rate=1e-3, warmup_fraction=0.2),
            progress=lambda step, total, info: lrs.append(info["lr"]))
    peak = lrs.index(max(lrs))
    assert len(lrs) == 20 and peak == 3                                          # step 4 of 20 ends the warm-up
    assert max(lrs) == pytest.approx(1e-3) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert lrs[:peak + 1] == sorted(lrs[:peak + 1]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)


# ---- attention relations on every layer ---------------------------------------------------------------------

def test_relation_heads_split_both_widths():
    assert relation_heads(288, 384, 12) == 12          # MiniLM with 9 of 12 heads left: 12 relations of 24/32
    assert relation_heads(384, 384, 12) == 12
    assert relation_heads(16, 32, 4) == 4 and relation_heads(24, 32, 4) == 4 and relation_heads(8, 32, 4) == 4
    assert relation_heads(20, 32, 4) == 4 and relation_heads(6, 32, 4) == 2


@pytest.mark.parametrize("layers", ["last", "all"])
def test_relation_loss_is_zero_for_the_teacher_and_positive_after_pruning(layers):
    teacher = tiny_bert()
    idx = list(range(LAYERS)) if layers == "all" else [LAYERS - 1]
    same = copy.deepcopy(teacher)
    s_cap, t_cap = _QKVCapture(same, idx), _QKVCapture(teacher, idx)
    with torch.no_grad():
        same(**HELD_OUT), teacher(**HELD_OUT)
    assert abs(float(attention_relation_loss(s_cap, t_cap, HELD_OUT["attention_mask"].float()))) < 1e-6
    student = copy.deepcopy(teacher)
    structured_prune(student, StructuredPruneConfig(head_ratio=0.25), batches=TRAIN[:1])
    s_cap = _QKVCapture(student, idx)
    with torch.no_grad():
        student(**HELD_OUT)
    assert float(attention_relation_loss(s_cap, t_cap, HELD_OUT["attention_mask"].float()).detach()) > 1e-4
    assert len(s_cap.handles) == 3 * len(idx)
    s_cap.remove(), t_cap.remove()


def test_all_layer_relations_train_a_pruned_student_and_embeddings_stay_frozen():
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    rec = structured_prune(student, StructuredPruneConfig(head_ratio=0.25, ffn_ratio=0.5), batches=TRAIN[:2])
    emb_before = {k: v.clone() for k, v in student.embeddings.state_dict().items()}
    before = cosine(student, teacher)
    cfg = DistillConfig(max_steps=30, learning_rate=3e-3, attention_loss_weight=1.0, attention_layers="all")
    result = distill(student, teacher, TRAIN, cfg, layer_map=rec.kept_layers)
    assert result.last_loss < result.first_loss and cosine(student, teacher) > before
    assert all(torch.equal(v, student.embeddings.state_dict()[k]) for k, v in emb_before.items())
    assert all(p.requires_grad for p in student.parameters())                  # flags restored afterwards
    trained = copy.deepcopy(student)
    distill(trained, teacher, TRAIN, cfg.model_copy(update={"max_steps": 3, "train_embeddings": True}))
    assert not torch.equal(trained.embeddings.word_embeddings.weight, student.embeddings.word_embeddings.weight)


# ---- gradual pruning budgets --------------------------------------------------------------------------------

def test_increment_shares():
    assert increment_shares(1, 0.5) == [1.0]
    assert increment_shares(4, None) == [0.25] * 4
    shares = increment_shares(3, 0.5)
    assert shares == pytest.approx([0.25, 0.25, 0.5]) and sum(shares) == pytest.approx(1.0)


def test_gradual_pruning_spends_the_final_share_on_the_final_architecture():
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    cfg = StructuredPruneConfig(ffn_ratio=0.5, increments=3, final_recovery_share=0.5,
                                recovery=DistillConfig(max_steps=20, learning_rate=1e-3))
    _, results = prune_gradually(student, teacher, cfg, calibration=TRAIN[:1], training=TRAIN)
    assert [r.steps for r in results] == [5, 5, 10]


# ---- the planner's prior is a function of the recovery budget -----------------------------------------------

def test_priors_improve_with_budget_and_match_the_measured_points():
    minutes = [0, 0.5, 1, 2, 5, 10, 15, 30, 60, 600]
    for curve in priors.RECOVERY_CURVES:
        got = [priors.recovered_cosine(curve, m) for m in minutes]
        assert got == sorted(got) and got[-1] == got[-3]                      # monotone, flat past the data
        for m, c in priors.RECOVERY_CURVES[curve]:
            assert priors.recovered_cosine(curve, m) == pytest.approx(c)
    drops = [priors.pruning_drop(0.25, 0.5, 0, m) for m in minutes]
    assert drops == sorted(drops, reverse=True)
    assert priors.pruning_drop(0, 0.5, 0, 30) == pytest.approx(1 - priors.RECOVERY_CURVES["ffn50"][-1][1])
    # both measured cuts with heads −25 % (alone, and on top of FFN −50 %) are predicted as measured: the head drop is
    # interpolated in the FFN ratio between them (head_drop_per_ratio)
    for head, ffn, curve in ((0.25, 0.5, "ffn50_heads25"), (0.25, 0.0, "heads25")):
        for m, c in priors.RECOVERY_CURVES[curve]:
            assert priors.pruning_drop(head, ffn, 0, m) == pytest.approx(1 - c), (curve, m)
    # heads cost more on an unpruned FFN than on top of a pruned one, at every measured minute
    for m in (0, 1, 5, 15, 30):
        assert priors.head_drop_per_ratio(m, 0.0) > priors.head_drop_per_ratio(m, 0.25) > \
            priors.head_drop_per_ratio(m, 0.5)
    assert priors.pruning_drop(0, 0.25, 0, 5) < priors.pruning_drop(0, 0.5, 0, 5)
    assert priors.pruning_drop(0.25, 0.5, 0, 5) > priors.pruning_drop(0, 0.5, 0, 5)
    assert priors.pruning_drop(0, 0, 0, 0) == 0


@pytest.fixture(scope="module")
def minilm_host():
    from edge_sdk.modelspec import inspect_model
    from edge_sdk.profiles import load_registry

    prof, _ = load_registry(host_profile="static").resolve("host")
    return inspect_model("minilm", batch=1, seq_len=128), prof


def _best_pruned(spec, prof, minutes, drop=0.3):
    ps = plan_for_profile(spec, prof, model="m", top=5,
                          constraints=Constraints(max_quality_drop=drop, recovery_minutes=minutes))
    return next(p for p in ps.plans if p.pass_of("structured_prune") is not None), ps


@pytest.mark.parametrize("minutes", [1, 30])
def test_the_plan_carries_its_recovery_budget_and_predicts_from_it(minilm_host, minutes):
    spec, prof = minilm_host
    plan, ps = _best_pruned(spec, prof, minutes)
    d = plan.pass_of("distill")
    assert d.max_seconds == minutes * 60 and d.max_steps >= 10**6                # time, not steps, ends it
    assert ps.constraints["recovery_minutes"] == minutes
    assert f"{minutes:g} min of label-free recovery" in plan.predicted.quality.basis
    # every curve the prior prices from is named, heads alone too (a heads-only plan is priced from that curve)
    assert f"heads −25 % alone → {priors.recovered_cosine('heads25', minutes):.3f}" in plan.predicted.quality.basis
    again = predict_plan(plan.model_copy(update={"model_spec": spec}), prof)    # re-costed from the plan alone
    assert again.quality.cosine_drop == pytest.approx(plan.predicted.quality.cosine_drop)


def test_ffn_drop_interpolates_between_the_measured_ratios():
    for minutes in (0, 1, 5, 15, 30):
        for ratio, curve in priors.FFN_CURVES:  # exact at the measured ratios
            assert priors.ffn_drop(ratio, minutes) == pytest.approx(1 - priors.recovered_cosine(curve, minutes))
        (r0, _), (r1, _) = priors.FFN_CURVES[:2]
        middle = (r0 + r1) / 2
        assert priors.ffn_drop(middle, minutes) == pytest.approx(
            (priors.ffn_drop(r0, minutes) + priors.ffn_drop(r1, minutes)) / 2)
        assert priors.ffn_drop(0, minutes) == 0
        assert priors.ffn_drop(r0 / 2, minutes) == pytest.approx(priors.ffn_drop(r0, minutes) / 2)
        ratios = [0, 0.125, 0.25, 0.375, 0.5, 0.625]
        drops = [priors.ffn_drop(r, minutes) for r in ratios]
        assert drops == sorted(drops)
        # past the last measured ratio: the slope of the last stretch, not of the line from 0
        slope = (priors.ffn_drop(r1, minutes) - priors.ffn_drop(r0, minutes)) / (r1 - r0)
        assert priors.ffn_drop(r1 + 0.1, minutes) == pytest.approx(priors.ffn_drop(r1, minutes) + 0.1 * slope)


def test_more_recovery_lets_the_planner_prune_within_a_budget_it_rejects_with_less(minilm_host):
    spec, prof = minilm_host
    prune = StructuredPruneConfig(ffn_ratio=0.5)
    tight = priors.pruning_drop(0, 0.5, 0, 30) + 0.02        # FFN −50 % fits after 30 min (+ int8), not after 1
    assert priors.pruning_drop(0, 0.5, 0, 1) > tight

    def pruned_ffn(minutes):
        ps = plan_for_profile(spec, prof, model="m", top=10,
                              constraints=Constraints(max_quality_drop=tight, recovery_minutes=minutes))
        return max((p.pass_of("structured_prune").ffn_ratio for p in ps.plans if p.pass_of("structured_prune")),
                   default=0.0)
    assert pruned_ffn(30) >= prune.ffn_ratio > pruned_ffn(1)


def test_no_recovery_means_no_distill_pass_and_the_one_shot_prior(minilm_host):
    spec, prof = minilm_host
    plan, _ = _best_pruned(spec, prof, 0, drop=0.6)
    assert plan.pass_of("distill") is None
    assert "no recovery" in plan.predicted.quality.basis
    with pytest.raises(InputError, match="recovery-minutes"):
        Constraints(recovery_minutes=-1).validate()


# ---- the build trains on all its text, not the calibration sample -------------------------------------------

def test_training_stream_reads_the_recovery_texts(tmp_path):
    from transformers import BertTokenizerFast  # noqa: F401  (a word-level tokenizer keeps this offline and fast)

    from edge_sdk.passes._inputs import calibration_batches, calibration_texts
    from edge_sdk.passes.state import BuildState

    state = BuildState(model=tiny_bert(), teacher=None, tokenizer=None, work_dir=tmp_path,
                       calibration_texts=("a b c",) * 3, recovery_texts=tuple(f"text {i}" for i in range(50)))
    assert len(calibration_texts(state)) == 3 and len(calibration_texts(state, recovery=True)) == 50
    assert calibration_texts(state.evolve(recovery_texts=()), recovery=True) == ["a b c"] * 3
    with pytest.raises(InputError):
        calibration_batches(state, 2)                                            # no tokenizer: refused


# ---- global allocation: one ranking over all layers ----------------------------------------------------------

def test_global_allocation_keeps_the_same_total_and_respects_the_floor():
    from edge_sdk.passes.prune import MIN_KEEP_FRACTION, _top_global

    kept = [list(range(8)), list(range(8)), list(range(8))]
    scores = [torch.full((8,), 10.0), torch.arange(8.0) / 100, torch.full((8,), 5.0)]
    out = _top_global(kept, scores, total=12, floor=2)
    assert [len(k) for k in out] == [8, 2, 2] and out[1] == [6, 7]        # the weak layer keeps only its floor
    teacher = tiny_bert()
    student = copy.deepcopy(teacher)
    rec = structured_prune(student, StructuredPruneConfig(ffn_ratio=0.5, head_ratio=0.5, allocation="global"),
                           batches=TRAIN[:2])
    widths = [len(f) for f in rec.kept_ffn]
    heads = [len(h) for h in rec.kept_heads]
    assert sum(widths) == 3 * 32 and sum(heads) == 3 * 2                  # same totals (FLOPs) as uniform
    assert min(widths) >= MIN_KEEP_FRACTION * 64 and min(heads) >= 1
    with torch.no_grad():
        assert torch.isfinite(student(**HELD_OUT).last_hidden_state).all()


def test_plan_cli_writes_the_recovery_budget_into_the_plan(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "p.json"
    r = subprocess.run([sys.executable, "-m", "edge_sdk", "plan", "--model", "minilm", "--device", "host",
                        "--runtime", "onnxruntime", "--max-quality-drop", "0.3", "--recovery-minutes", "15",
                        "-o", str(out)], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    passes = {p["kind"]: p for p in json.loads(out.read_text())["passes"]}
    assert passes["structured_prune"]["allocation"] == "global"
    assert passes["distill"]["max_seconds"] == 900
    bad = subprocess.run([sys.executable, "-m", "edge_sdk", "plan", "--recovery-minutes", "-1"],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert bad.returncode != 0 and "recovery-minutes" in bad.stderr


def test_build_recovery_minutes_become_the_given_plans_time_budget(monkeypatch, minilm_host):
    import edge_sdk
    import edge_sdk.builder

    spec, prof = minilm_host
    plan, _ = _best_pruned(spec, prof, 5)
    seen = {}
    monkeypatch.setattr(edge_sdk.builder, "build", lambda plans, out, options, progress: seen.update(o=options))
    edge_sdk.build(plan.model_copy(update={"model_spec": spec}), recovery_minutes=30)
    assert seen["o"].distill_seconds == 1800 and seen["o"].distill_steps >= 10**6
    edge_sdk.build(plan.model_copy(update={"model_spec": spec}), recovery_minutes=0)
    assert seen["o"].distill_steps == 0
    edge_sdk.build(plan.model_copy(update={"model_spec": spec}), recovery_minutes=30, distill_steps=7)
    assert seen["o"].distill_steps == 7 and seen["o"].distill_seconds is None     # explicit budgets win
