"""Forced layouts (`--layout`, `--stages`) become real Plans costed by the planner's cost model, and a deliberately
unbalanced pipeline shows up in both the predicted and the measured per-stage times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.errors import InputError
from edge_sdk.parallel import layout_plan, parse_layout, parse_stages
from edge_sdk.parallel.topology import balanced_stages, coords, rank_of

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"


def six_layer_llama(tmp_path: Path) -> str:
    cfg = json.loads((CONFIGS / "tiny-llama.json").read_text())
    cfg["num_hidden_layers"] = 6
    p = tmp_path / "six-llama.json"
    p.write_text(json.dumps(cfg))
    return str(p)


@pytest.mark.parametrize("text,want", [
    ("pp=2", (1, 1, 2)), ("tp=2", (1, 2, 1)), ("dp=2,pp=2", (2, 1, 2)), ("dp=2 × tp=2", (2, 2, 1)),
    ("tp=2x pp=4", (1, 2, 4)), ("single", (1, 1, 1)),
])
def test_parse_layout(text, want):
    assert parse_layout(text) == want


@pytest.mark.parametrize("text", ["pp=0", "pp=2,pp=2", "mp=2", ""])
def test_parse_layout_rejects(text):
    with pytest.raises(InputError):
        parse_layout(text)


def test_parse_stages_and_balance():
    assert parse_stages("0-0,1-5") == [(0, 0), (1, 5)]
    assert parse_stages("0:2, 3:5") == [(0, 2), (3, 5)]
    assert balanced_stages(5, 2) == [(0, 2), (3, 4)]
    with pytest.raises(InputError):
        parse_stages("0-a")


def test_rank_coordinates_follow_the_device_mesh_order():
    # init_device_mesh(..., (dp, pp, tp)) is row-major: tp peers adjacent, then stages, then replicas
    seen = [coords(r, tp=2, pp=2) for r in range(8)]
    assert [(c.dp, c.pp, c.tp) for c in seen] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1),
                                                  (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]
    assert all(rank_of(c.dp, c.pp, c.tp, tp_size=2, pp_size=2) == r for r, c in enumerate(seen))


def test_forced_plan_uses_the_cost_model(tmp_path):
    from edge_sdk.planner import load_plan, save_plan

    model = six_layer_llama(tmp_path)
    bal = layout_plan(model, "pp=2", batch=4, seq_len=64)
    assert (bal.layout.dp, bal.layout.tp, bal.layout.pp) == (1, 1, 2)
    assert [(s.first_layer, s.last_layer) for s in bal.layout.stages] == [(0, 2), (3, 5)]
    assert bal.layout.stages[0].predicted_ms == pytest.approx(bal.layout.stages[1].predicted_ms, rel=0.2)
    # the same split given by hand is costed exactly as the cost model costs its own balanced split
    same = layout_plan(model, "pp=2", batch=4, seq_len=64, stages=[(0, 2), (3, 5)])
    assert [s.predicted_ms for s in same.layout.stages] == pytest.approx([s.predicted_ms for s in bal.layout.stages],
                                                                         rel=1e-3)
    skew = layout_plan(model, "pp=2", batch=4, seq_len=64, stages=[(0, 0), (1, 5)])
    a, b = (s.predicted_ms for s in skew.layout.stages)
    assert b > 3 * a  # five blocks (+ head) against one (+ embeddings)
    assert skew.layout.communication_ms > 0
    save_plan(skew, tmp_path / "p.json")
    assert load_plan(tmp_path / "p.json") == skew  # a normal Plan: saved, edited, given back with --plan
    assert "forced by --layout" in skew.rationale["layout"]


@pytest.mark.timeout(120)
def test_unbalanced_stages_show_in_the_measured_times(tmp_path):
    """Stages [0,0] and [1,5] on a 6-layer model: the 5-layer stage is measurably slower, as predicted."""
    from edge_sdk.parallel import run_plan

    model = six_layer_llama(tmp_path)
    plan = layout_plan(model, "pp=2", batch=4, seq_len=64, stages=parse_stages("0-0,1-5"))
    # a few warm-up forwards: the first calls of a new shape are slow (kernel selection, allocator growth)
    res = run_plan(plan, iterations=5, warmup=3, timeout_s=100).model_dump()
    s0, s1 = res["stages"]
    assert (s0["first_layer"], s0["last_layer"], s1["first_layer"], s1["last_layer"]) == (0, 0, 1, 5)
    assert s1["predicted_ms"] > 3 * s0["predicted_ms"]
    # measured in CPU time (wall time is inflated at random when other work shares the cores): 3-4× here (both
    # stages also pay a fixed ≈ 1 ms for masks, rotary embeddings and Python); wall times show it too when idle
    assert s1["measured_cpu_ms"] > 2 * s0["measured_cpu_ms"], (s0, s1)
    assert s1["measured_ms"] > s0["measured_ms"], (s0, s1)
    assert res["output"]["ok"] and res["output"]["max_abs_diff"] <= 1e-5
    # each stage holds exactly its blocks (+ embeddings first, final norm and LM head last), fp32
    from edge_sdk.modelspec import inspect_model

    layers = inspect_model(model).layers
    block = sum(x.params for x in layers if x.block == 0)
    ends = {k: sum(x.params for x in layers if x.block is None and x.kind == k)
            for k in ("embedding", "norm", "lm_head")}
    assert res["ranks"][0]["params_mb"] == pytest.approx((ends["embedding"] + block) * 4 / 1e6)
    assert res["ranks"][1]["params_mb"] == pytest.approx((5 * block + ends["norm"] + ends["lm_head"]) * 4 / 1e6)
