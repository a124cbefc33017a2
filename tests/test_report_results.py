"""Which benchmark results a report uses: matching ones are compared with predictions, everything else is listed
with its reason and skipped (a stray or broken file never sinks a report). Real BenchResult files, no report
build: these run in well under a second."""

from __future__ import annotations

import json
from pathlib import Path

from edge_sdk.schemas.bench import BenchResult
from edge_sdk.reporting.measured import collect_results


def bench_result(**over) -> dict:
    """A valid BenchResult as `edge-sdk bench` writes it (fields from a real local run, trimmed)."""
    stats = {"mean": 56.0, "p50": 56.2, "p90": 62.8, "p95": 64.1, "p99": 68.7, "min": 45.6, "max": 70.4, "std": 5.6}
    data = {
        "model": "minilm", "model_name": "all-MiniLM-L6-v2", "bundle_id": "0bf483749f19e540",
        "bundle_sha256": "84eaf7ecc5ffe8ba3bb6d8496c54b0cb0d8e726df4760845ec1636970ed35e87", "target": "local",
        "host": "vm", "device": "host", "artifact": "model.onnx", "format": "onnx", "precision": "int8_dynamic",
        "runtime": "onnxruntime", "runtime_module": "onnxruntime", "runtime_version": "1.32.0",
        "provider_requested": "CPUExecutionProvider", "provider_used": "CPUExecutionProvider", "fell_back": False,
        "threads": None, "cpu_count": 2, "cpu_model": "test cpu", "arch": "x86_64", "python_version": "3.11.7",
        "input_kind": "padded", "warmup": 5, "iterations": 30, "duration_s": None, "latency_ms": stats,
        "throughput_per_s": 17.8,
        "batches": [{"batch": 1, "inputs": "padded", "shapes": {"input_ids": [1, 128]}, "iterations": 30,
                     "latency_ms": stats, "throughput_per_s": 17.8, "wall_s": 1.7, "samples_ms": [56.2] * 3}],
        "model_load_ms": 252.0, "first_inference_ms": 59.6, "peak_rss_mb": 110.4,
        "predicted_latency_ms": 24.78, "predicted_for": "batch 1, seq_len 128, on host",
        "compared_with": "p50 of padded inputs, batch 1", "predicted_over_measured": 24.78 / 56.2,
        "runner_version": "1", "started_at": "2026-11-28T00:46:50.617+00:00",
        "finished_at": "2026-11-28T00:46:53.253+00:00",
    }
    data.update(over)
    BenchResult.model_validate(data)  # the fixture itself must be a real BenchResult
    return data


def write_results(root: Path) -> Path:
    """One matching result and one of each kind that must be ignored."""
    (root / "local").mkdir(parents=True)
    (root / "pi").mkdir()
    (root / "local" / "20260101T000000.000Z.json").write_text(json.dumps(bench_result()))
    (root / "local" / "20260101T000001.000Z.json").write_text(json.dumps(
        bench_result(model="examples/configs/tiny-vit.json", model_name="tiny-vit")))
    (root / "local" / "20260101T000002.000Z.json").write_text('{"model": "minilm", "truncated": ')
    (root / "local" / "20260101T000003.000Z.json").write_text(json.dumps({"model": "minilm", "latency": 3}))
    (root / "pi" / "20260101T000004.000Z.json").write_text(json.dumps(
        bench_result(target="pi", device="raspberry-pi-5", target_profile="raspberry-pi-5")))
    # a bundle built for the Pi but benchmarked on this machine: a host measurement, not a Pi one
    (root / "local" / "20260101T000005.000Z.json").write_text(json.dumps(bench_result(device="raspberry-pi-5")))
    return root


def test_matching_result_is_used_with_its_ratio(tmp_path):
    root = write_results(tmp_path / "results")
    matched, ignored = collect_results(root, model="minilm", model_name="all-MiniLM-L6-v2", devices={"host"})
    assert [m.device for m in matched] == ["host", "host"]
    m = matched[0].measurement
    assert m.kind == "measured" and m.p50_ms == 56.2
    assert abs(m.predicted_over_measured - 24.78 / 56.2) < 1e-3
    assert m.file == "local/20260101T000000.000Z.json"
    reasons = {i.file: i.reason for i in ignored}
    assert "another model (tiny-vit" in reasons["local/20260101T000001.000Z.json"]
    assert reasons["local/20260101T000002.000Z.json"].startswith("not readable JSON")
    assert reasons["local/20260101T000003.000Z.json"].startswith("not a BenchResult")
    assert "raspberry-pi-5" in reasons["pi/20260101T000004.000Z.json"]
    assert "not among the selected devices" in reasons["pi/20260101T000004.000Z.json"]
    cross = matched[1].measurement
    assert cross.file == "local/20260101T000005.000Z.json" and cross.predicted_over_measured is None
    assert "built for raspberry-pi-5 but measured on host" in cross.comparison


def test_selected_device_result_is_matched_by_target_profile(tmp_path):
    root = write_results(tmp_path / "results")
    matched, _ = collect_results(root, model="minilm", model_name="all-MiniLM-L6-v2",
                                 devices={"host", "raspberry-pi-5"})
    assert sorted(m.device for m in matched) == ["host", "host", "raspberry-pi-5"]


def test_bundle_filter_ignores_other_bundles(tmp_path):
    root = write_results(tmp_path / "results")
    matched, ignored = collect_results(root, model="minilm", model_name="all-MiniLM-L6-v2", devices={"host"},
                                       bundle_sha256="0" * 64)
    assert matched == []
    assert any(i.reason.startswith("another bundle") for i in ignored)


def test_missing_results_dir_is_not_an_error(tmp_path):
    assert collect_results(tmp_path / "nope", model="minilm", model_name="x", devices={"host"}) == ([], [])
    assert collect_results(None, model="minilm", model_name="x", devices={"host"}) == ([], [])


def test_ratio_is_computed_when_the_result_lacks_it(tmp_path):
    (tmp_path / "r" / "local").mkdir(parents=True)
    (tmp_path / "r" / "local" / "a.json").write_text(json.dumps(bench_result(predicted_over_measured=None)))
    matched, _ = collect_results(tmp_path / "r", model="minilm", model_name="all-MiniLM-L6-v2", devices={"host"})
    assert abs(matched[0].measurement.predicted_over_measured - 24.78 / 56.2) < 1e-3


def test_prediction_is_compared_with_the_padded_run_not_the_shorter_real_one(tmp_path):
    """Predictions are for the full seq_len: a run on real (shorter) inputs is listed, not compared."""
    base = bench_result()
    padded = base["batches"][0]
    real = {**padded, "inputs": "real", "latency_ms": {**padded["latency_ms"], "p50": 6.66, "mean": 6.7}}
    (tmp_path / "r" / "loopback").mkdir(parents=True)
    (tmp_path / "r" / "loopback" / "a.json").write_text(json.dumps(bench_result(batches=[real, padded])))
    matched, _ = collect_results(tmp_path / "r", model="minilm", model_name="all-MiniLM-L6-v2", devices={"host"})
    m = matched[0].measurement
    assert m.input_kind == "padded" and m.p50_ms == 56.2
    assert abs(m.predicted_over_measured - 24.78 / 56.2) < 1e-3
    assert m.other_runs == ["batch 1, real inputs: p50 6.66 ms"]
