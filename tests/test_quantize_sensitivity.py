"""Static int8 that measures which MatMuls to keep in float (passes/quantize_sensitivity.py), on a real export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edge_sdk.builder.sources import load_for_build
from edge_sdk.passes.export_onnx import export_onnx
from edge_sdk.passes.quantize_onnx import calibration_feeds, quantize_onnx, quantize_static_int8, weight_matmuls
from edge_sdk.passes.quantize_sensitivity import ranked_matmuls
from edge_sdk.quality import builtin_sentences
from edge_sdk.schemas.passes import QuantizeOnnxConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("sensitivity")
    texts = list(builtin_sentences(48).inputs)
    loaded = load_for_build(str(ROOT / "examples/configs/tiny-bert.json"), corpus=texts)
    export_onnx(loaded.model, d / "model.onnx", tokenizer=loaded.tokenizer)
    feeds = calibration_feeds(d / "model.onnx", texts=texts, tokenizer=loaded.tokenizer)
    return d, feeds


def test_ranking_covers_every_weight_matmul_worst_first(exported):
    d, feeds = exported
    src = d / "model.onnx"
    candidates = weight_matmuls(onnx.load(src))
    quantize_static_int8(src, d / "all.onnx", feeds, exclude_ffn_down=False, reduce_range=False)
    ranked = ranked_matmuls(src, d / "all.onnx", feeds[:8], candidates)
    assert sorted(n for n, _ in ranked) == sorted(candidates)
    sqnr = [db for _, db in ranked]
    assert sqnr == sorted(sqnr) and all(np.isfinite(sqnr))


def test_the_float_set_is_what_the_budget_needs(exported):
    d, feeds = exported
    smoke = feeds[0]
    loose = QuantizeOnnxConfig(mode="static_int8", sensitivity=True, exclude_ffn_down=False, max_drop=0.5,
                               reduce_range=False)
    _, details = quantize_onnx(d / "model.onnx", loose, smoke_feed=smoke, calibration=feeds, dst=d / "loose.onnx")
    assert details["kept_float"] == [] and details["sensitivity_met"]  # all int8 is within a 0.5 drop
    tight = loose.model_copy(update={"max_drop": 1e-7})
    _, details = quantize_onnx(d / "model.onnx", tight, smoke_feed=smoke, calibration=feeds, dst=d / "tight.onnx")
    kept = details["kept_float"]
    assert kept and set(kept) <= set(weight_matmuls(onnx.load(d / "model.onnx")))
    assert [k for k, _ in details["sensitivity_tried"]][0] == 0  # it started from all-int8, and measured each step
    q = onnx.load(d / "tight.onnx")
    float_matmuls = {n.name for n in q.graph.node if n.op_type == "MatMul"
                     and not any(i.endswith("_DequantizeLinear_Output") for i in n.input[1:])}
    assert set(kept) <= float_matmuls  # the kept ones really have float weights in the written model
