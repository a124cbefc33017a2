"""Statistics on known arrays, the runner-record → BenchResult step, and result files."""

from __future__ import annotations

import json
import math
import re

import pytest

from edge_sdk.benchmark import BenchSettings, load_result, save_result
from edge_sdk.benchmark.parse import result_from_runner
from edge_sdk.benchmark.stats import latency_stats, throughput_per_s
from edge_sdk.errors import InputError, RemoteError


def test_percentiles_of_1_to_100():
    s = latency_stats([float(x) for x in range(100, 0, -1)])  # order must not matter
    assert s.mean == 50.5 and s.min == 1 and s.max == 100
    # linear interpolation: the q-th percentile sits at index q/100 * (n - 1)
    assert s.p50 == pytest.approx(50.5)
    assert s.p90 == pytest.approx(90.1)
    assert s.p95 == pytest.approx(95.05)
    assert s.p99 == pytest.approx(99.01)
    assert s.std == pytest.approx(math.sqrt((100 ** 2 - 1) / 12))  # population std of 1..n


def test_percentiles_of_two_and_one_values():
    s = latency_stats([10.0, 20.0])
    assert (s.p50, s.p90, s.p99, s.std) == pytest.approx((15.0, 19.0, 19.9, 5.0))
    one = latency_stats([3.0])
    assert one.p50 == one.p99 == one.min == one.max == 3.0 and one.std == 0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_stats_reject_empty_or_non_finite(bad):
    with pytest.raises(ValueError):
        latency_stats(bad)


def test_throughput_counts_items():
    assert throughput_per_s([10.0] * 4, batch=8) == pytest.approx(800.0)
    assert throughput_per_s([2.0, 6.0], batch=1) == pytest.approx(250.0)


def runner_record(**over):
    """A result record as `edge_device bench` prints it (shape pinned by test_runner's real runs)."""
    rec = {
        "event": "result", "runner_version": "1", "manifest_sha256": "ab" * 32, "bundle_dir": "/x/releases/r1",
        "model_name": "m", "model_id": "m-src", "device": "host",
        "plan_prediction": {"latency_ms": 4.0, "batch": 1, "seq_len": 32, "device": "host"},
        "artifact": {"path": "model/model.onnx", "format": "onnx", "precision": "fp32"},
        "runtime": "onnxruntime", "runtime_module": "onnxruntime", "runtime_version": "1.32.0",
        "provider_requested": "CPUExecutionProvider", "provider_used": "CPUExecutionProvider", "fell_back": False,
        "fallback_reason": None, "threads": 2, "cpu_count": 2, "cpu_model": "cpu", "board": None, "arch": "x86_64",
        "os": "Linux", "python_version": "3.11.7", "numpy_version": "2", "model_load_ms": 5.0,
        "first_inference_ms": 9.0, "rss_before_load_mb": 30.0, "peak_rss_mb": 60.0, "peak_rss_source": "VmHWM",
        "ru_maxrss_mb": 60.0, "warmup": 1, "iterations": 4, "duration_s": None, "tegrastats": None,
        "started_at": "2026-11-28T00:00:00+00:00", "finished_at": "2026-11-28T00:00:01+00:00",
        "runs": [
            {"inputs": "real", "batch": 1, "shapes": {"input_ids": [1, 12]}, "iterations": 4, "wall_s": 0.01,
             "latencies_ms": [1.0, 2.0, 3.0, 4.0]},
            {"inputs": "padded", "batch": 1, "shapes": {"input_ids": [1, 32]}, "iterations": 4, "wall_s": 0.02,
             "latencies_ms": [8.0, 8.0, 8.0, 8.0]},
            {"inputs": "padded", "batch": 8, "skipped": "the model has a static batch of 1 (...)"},
        ],
    }
    rec.update(over)
    return rec


SETTINGS = BenchSettings(iterations=4, warmup=1, batches=[1, 8], inputs="all")


def test_result_compares_prediction_with_the_padded_median():
    r = result_from_runner(runner_record(), settings=SETTINGS, target="jetson", bundle_id="r1")
    assert r.latency_ms.p50 == 2.5 and r.throughput_per_s == pytest.approx(400.0)  # first batch at top level
    assert [(b.inputs, b.batch) for b in r.batches] == [("real", 1), ("padded", 1)]
    assert r.skipped[0].batch == 8 and "static batch" in r.skipped[0].reason
    assert r.predicted_over_measured == pytest.approx(4.0 / 8.0)  # padded preferred: plan predicts seq_len 32
    assert "padded inputs, batch 1, shape [1, 32]" in r.compared_with
    assert r.predicted_for == "batch 1, seq_len 32, on host"


def test_no_ratio_without_a_matching_batch_or_prediction():
    r = result_from_runner(runner_record(plan_prediction={"latency_ms": 4.0, "batch": 8, "seq_len": 32}),
                           settings=SETTINGS, target="local", bundle_id="b")
    assert r.predicted_latency_ms == 4.0 and r.predicted_over_measured is None
    r = result_from_runner(runner_record(plan_prediction=None), settings=SETTINGS, target="local", bundle_id="b")
    assert r.predicted_latency_ms is None and r.predicted_over_measured is None


def test_malformed_runner_record_is_a_remote_error():
    rec = runner_record()
    del rec["runtime"]
    with pytest.raises(RemoteError, match="result line is malformed"):
        result_from_runner(rec, settings=SETTINGS, target="local", bundle_id="b")


def test_save_and_load_result(tmp_path):
    r = result_from_runner(runner_record(), settings=SETTINGS, target="jetson/../x", bundle_id="r1")
    p = save_result(r, tmp_path / "results")
    assert p.parent == tmp_path / "results" / "jetson_.._x"  # a target name cannot leave results/
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z\.json", p.name)
    assert [f.name for f in p.parent.iterdir()] == [p.name]  # no temp file left
    assert load_result(p) == r
    assert json.loads(p.read_text())["latency_ms"]["p99"] == pytest.approx(3.97)


def test_load_result_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_result(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1}')
    with pytest.raises(InputError, match=r"bad\.json: field '.+': Field required"):
        load_result(bad)


def test_settings_build_runner_flags():
    s = BenchSettings(duration_s=2.5, batches=[1, 8], threads=2, inputs="real", timeout_s=30)
    assert s.runner_args() == ["--warmup", "10", "--batch", "1,8", "--inputs", "real", "--deadline-s", "30",
                               "--duration", "2.5", "--threads", "2"]
    assert BenchSettings().iterations == 100
    with pytest.raises(ValueError, match="not both"):
        BenchSettings(iterations=5, duration_s=1)
