"""Report defects found by new-user trials (issue 14): the Jetson Nano runs MiniLM-style encoders with an opset-16
export (the fix the report itself names), LiteRT rows are not labelled onnxruntime sessions, a measurement is
compared (P/M) only with a prediction for the same plan on the same device, and image runs are not "padded".
One real op graph of tiny-bert (ONNX export, no LiteRT conversion), made once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.reporting import build_report
from edge_sdk.reporting.markdown import render_markdown
from edge_sdk.reporting.measured import collect_results
from test_report_results import bench_result

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "examples" / "configs" / "tiny-bert.json")


@pytest.fixture(scope="module")
def graph():
    from edge_sdk.opgraph import make_graph

    return make_graph(TINY, seq_len=128, tflite="map")[0]


def test_jetson_nano_runs_with_a_plan_that_exports_at_opset_16(graph):
    rep = build_report(TINY, devices="jetson-nano", results_dir=None, tflite="map", graph=graph)
    nano = rep.device("jetson-nano")
    assert nano.verdict == "runs_with_plan", nano.reasons
    assert "export_onnx (opset 16)" in nano.best_plan.passes
    trt = next(c for c in nano.coverage if c.is_plan_runtime)
    assert (trt.runtime, trt.export_opset, trt.verdict) == ("tensorrt", 16, "full")
    assert "LayerNormalization" in trt.summary and "opset 16" in trt.summary
    assert any("opset 16" in r and "LayerNormalization" in r for r in nano.reasons)
    assert not any(f.startswith("[plan runtime]") for f in nano.fallback_flags)
    ep = next(c for c in nano.coverage if c.provider == "TensorrtExecutionProvider")
    assert ep.verdict == "partial" and ep.export_opset == 16  # as exported it still falls back: said, not hidden
    assert "runs with a plan" in render_markdown(rep)


def test_litert_session_rows_are_labelled_litert(graph):
    from edge_sdk.reporting.html import render_html

    rep = build_report(TINY, devices="host", results_dir=None, tflite="map", graph=graph)
    host = rep.device("host")
    i = next(k for k, c in enumerate(host.coverage) if c.runtime == "litert")
    host.coverage[i] = host.coverage[i].model_copy(update={"check": "session", "graph": "tflite_converted",
                                                           "summary": "all builtins load"})
    md = render_markdown(rep)
    row = next(ln for ln in md.splitlines() if ln.startswith("| litert/"))
    assert "real LiteRT interpreter" in row and "onnxruntime" not in row
    assert "real LiteRT interpreter" in render_html(rep)
    ort = next(ln for ln in md.splitlines() if ln.startswith("| onnxruntime/CPUExecutionProvider"))
    assert "real onnxruntime session" in ort


def _write(root: Path, name: str, data: dict) -> None:
    (root / "local").mkdir(parents=True, exist_ok=True)
    (root / "local" / name).write_text(json.dumps(data))


def test_pm_only_for_the_same_plan_on_the_same_device(graph, tmp_path):
    rep = build_report(TINY, devices="host", results_dir=None, tflite="map", graph=graph, objective="quality")
    best = rep.device("host").best_plan
    root = tmp_path / "results"
    # a tiny-bert bundle built for the Pi (another plan) benchmarked on this machine: not compared
    _write(root, "a.json", bench_result(model=TINY, model_name="tiny-bert", device="raspberry-pi-5",
                                        precision="fp16", runtime="litert", provider_requested="xnnpack",
                                        provider_used="xnnpack", started_at="2026-11-28T00:00:02+00:00"))
    rep = build_report(TINY, devices="host", results_dir=root, tflite="map", graph=graph, objective="quality")
    host = rep.device("host")
    (m,) = host.measured
    assert m.best_plan_over_measured is None and "built for raspberry-pi-5" in m.not_compared
    row = next(ln for ln in render_markdown(rep).splitlines() if ln.startswith("| host |"))
    assert "another plan: not compared" in row and "P/M" not in row
    # a bundle of the best plan, built for and measured on this machine: compared with the row's prediction
    _write(root, "b.json", bench_result(model=TINY, model_name="tiny-bert", device="host", precision=best.precision,
                                        runtime=best.runtime, provider_requested=best.provider,
                                        provider_used=best.provider, started_at="2026-11-28T00:00:01+00:00"))
    rep = build_report(TINY, devices="host", results_dir=root, tflite="map", graph=graph, objective="quality")
    host = rep.device("host")
    same = next(m for m in host.measured if m.built_for == "host")
    assert same.not_compared is None
    assert same.best_plan_over_measured == round(host.best_plan.latency_ms / same.p50_ms, 4)
    assert host.headline_measurement() is same  # older, but the one that measures the best plan
    row = next(ln for ln in render_markdown(rep).splitlines() if ln.startswith("| host |"))
    assert f"(P/M {same.best_plan_over_measured:.2f})" in row


def test_image_runs_are_labelled_images_not_padded(tmp_path):
    stats = bench_result()["batches"][0]["latency_ms"]
    batches = [{"batch": 1, "inputs": kind, "shapes": {"pixel_values": [1, 3, 32, 32]}, "iterations": 30,
                "latency_ms": stats, "throughput_per_s": 17.8, "wall_s": 1.7, "samples_ms": [56.2] * 3}
               for kind in ("padded", "real")]
    _write(tmp_path / "r", "v.json", bench_result(model="tiny-vit", model_name="tiny-vit", batches=batches))
    (hit,), _ = collect_results(tmp_path / "r", model="tiny-vit", model_name="tiny-vit", devices={"host"})
    m = hit.measurement
    assert m.input_kind == "images" and m.other_runs == ["batch 1, images: p50 56.2 ms"]
    assert "padded" not in m.comparison
