"""Decoder benchmarks in reports and in `bench`'s P/M lines: TTFT, prefill and decode tokens/s and peak memory,
predicted (the plan's `predicted.generation`) beside measured (the BenchResult's `generation`).

The BenchResult below is a real `edge-sdk bench --local` record of the tiny-llama int4 host bundle (trimmed); the
predictions come from the planner, planned here independently of the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.modelspec import inspect_model
from edge_sdk.planner import plan_for_profile
from edge_sdk.profiles import load_registry
from edge_sdk.reporting import build_report
from edge_sdk.reporting.generation import compare_generation, decoder_pm_lines, measured_generation
from edge_sdk.reporting.markdown import render_markdown
from edge_sdk.reporting.measured import collect_results
from edge_sdk.schemas.bench import BenchResult
from edge_sdk.schemas.plan import GenerationPrediction

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "examples" / "configs" / "tiny-llama.json")


def decoder_result(**over) -> dict:
    decode = {"mean": 0.0494, "p50": 0.0319, "p90": 0.0378, "p95": 0.0507, "p99": 0.4374, "min": 0.03,
              "max": 1.4854, "std": 0.1393}
    prefill = {"mean": 0.3971, "p50": 0.3868, "p90": 0.4749, "p95": 0.4887, "p99": 0.4997, "min": 0.3047,
               "max": 0.5024, "std": 0.0685}
    data = {
        "model": TINY, "model_name": "tiny-llama", "bundle_id": "d8ff0145786bfc87",
        "bundle_sha256": "a886207116117cd9e49b8ed2ad1f2c4e705a3d13f874f7dfffc9610bd7707d1c", "target": "local",
        "host": "vm", "device": "host", "artifact": "model/model.onnx", "format": "onnx",
        "precision": "int4_weight_only", "runtime": "onnxruntime-genai", "runtime_module": "onnxruntime_genai",
        "runtime_version": "0.18.0", "provider_requested": "CPUExecutionProvider",
        "provider_used": "CPUExecutionProvider", "fell_back": False, "threads": 2, "cpu_count": 2,
        "cpu_model": "AMD EPYC", "arch": "x86_64", "python_version": "3.11.7", "input_kind": "decode+prefill",
        "warmup": 10, "iterations": 200, "duration_s": None, "latency_ms": decode, "throughput_per_s": 20244.6,
        "batches": [{"batch": 1, "inputs": "decode", "shapes": {"input_ids": [1, 1]}, "iterations": 217,
                     "latency_ms": decode, "throughput_per_s": 20244.6, "wall_s": 0.0107,
                     "samples_ms": [0.0582, 0.0387, 0.0341]},
                    {"batch": 1, "inputs": "prefill", "shapes": {"input_ids": [1, 32]}, "iterations": 7,
                     "latency_ms": prefill, "throughput_per_s": 2518.2, "wall_s": 0.0028,
                     "samples_ms": [0.4566, 0.3382, 0.3403]}],
        "model_load_ms": 7.271, "first_inference_ms": 0.457, "peak_rss_mb": 70.0, "peak_rss_source": "VmHWM",
        "predicted_latency_ms": 0.4733, "predicted_for": "batch 1, seq_len 128, on host",
        "runner_version": "1", "started_at": "2026-11-30T00:47:20.393+00:00",
        "finished_at": "2026-11-30T00:47:20.583+00:00",
        "generation": {"engine": "onnxruntime-genai", "prompt_tokens": 32, "new_tokens": 32, "generations": 7,
                       "tokens_timed": 217, "ttft_ms": 0.3868, "ttft_ms_samples": [0.4566, 0.3382, 0.3868],
                       "prefill_ms": 0.3641, "setup_ms": 12.935, "prefill_tokens_per_s": 87889.63,
                       "decode_ms_per_token": 0.0319, "decode_tokens_per_s": 20243.02},
    }
    data.update(over)
    return data


PRED = GenerationPrediction(prompt_tokens=32, context=128, ttft_ms=0.62, prefill_tokens_per_s=51612.9,
                            decode_ms_per_token=0.4733, decode_tokens_per_s=2112.8, peak_memory_mb=41.2, basis="x")


def test_pm_is_predicted_over_measured_for_every_metric():
    r = BenchResult.model_validate(decoder_result())
    gc = compare_generation(measured_generation(r), PRED)
    got = {m.name: (m.predicted, m.measured, m.predicted_over_measured) for m in gc.metrics}
    assert got == {"ttft_ms": (0.62, 0.3868, round(0.62 / 0.3868, 4)),
                   "prefill_tokens_per_s": (51612.9, 87889.63, round(51612.9 / 87889.63, 4)),
                   "decode_tokens_per_s": (2112.8, 20243.02, round(2112.8 / 20243.02, 4)),
                   "peak_memory_mb": (41.2, 70.0, round(41.2 / 70.0, 4))}
    assert gc.not_compared is None and gc.predicted_prompt_tokens == 32 and gc.context == 128


def test_bench_lines_say_which_way_each_ratio_goes():
    lines = decoder_pm_lines(PRED, BenchResult.model_validate(decoder_result()))
    assert lines[0].startswith("generation (onnxruntime-genai, 32-token prompt, 32 new tokens")
    ttft, prefill, decode, mem = lines[1:]
    assert "time to first token: P 0.62 ms, M 0.387 ms, P/M 1.60 (faster than predicted)" in ttft
    assert "decode: P 2,113 tokens/s, M 20,243 tokens/s, P/M 0.10 (faster than predicted)" in decode
    assert "P/M 0.59 (more memory than predicted" in mem
    slow = decoder_result(generation={**decoder_result()["generation"], "decode_tokens_per_s": 1000.0})
    assert "(slower than predicted)" in decoder_pm_lines(PRED, BenchResult.model_validate(slow))[3]
    # the plan's Prediction and a manifest's plan dict work as well as the GenerationPrediction itself
    as_dict = {"latency_ms": 0.4733, "generation": PRED.model_dump()}
    assert decoder_pm_lines(as_dict, BenchResult.model_validate(decoder_result())) == lines


def test_another_prompt_length_is_not_compared_for_ttft_and_prefill():
    other = decoder_result(generation={**decoder_result()["generation"], "prompt_tokens": 16})
    gc = compare_generation(measured_generation(BenchResult.model_validate(other)), PRED)
    by = {m.name: m for m in gc.metrics}
    assert by["ttft_ms"].predicted_over_measured is None and "16 tokens" in by["ttft_ms"].note
    assert by["prefill_tokens_per_s"].predicted_over_measured is None
    assert by["decode_tokens_per_s"].predicted_over_measured == round(2112.8 / 20243.02, 4)


def test_no_prediction_and_non_decoder_results():
    r = BenchResult.model_validate(decoder_result())
    lines = decoder_pm_lines(None, r)
    assert "not compared" in lines[0] and all("P —" in x for x in lines[1:])
    enc = decoder_result(generation=None)
    assert decoder_pm_lines(PRED, BenchResult.model_validate(enc)) == []


def test_collected_decoder_result_carries_its_measured_generation(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "r.json").write_text(json.dumps(decoder_result()))
    matched, ignored = collect_results(tmp_path, model=TINY, model_name="tiny-llama", devices={"host"})
    assert not ignored and len(matched) == 1
    m = matched[0].measurement
    assert m.input_kind == "decode" and m.p50_ms == 0.0319
    g = m.generation
    assert g is not None and g.kind == "measured" and g.prompt_tokens == 32
    assert {x.name: x.measured for x in g.metrics}["peak_memory_mb"] == 70.0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    (root / "local").mkdir()
    (root / "local" / "a.json").write_text(json.dumps(decoder_result()))
    (root / "local" / "b.json").write_text(json.dumps(decoder_result(precision="fp32",
                                                                     started_at="2026-11-30T00:40:00+00:00")))
    return build_report(TINY, devices="host", results_dir=root, tflite="map", calibration=False)


def test_report_sets_the_best_plans_predictions_beside_the_measurement(report):
    prof, _ = load_registry().resolve("host")
    best = plan_for_profile(inspect_model(TINY, seq_len=128), prof, model=TINY).plans[0]
    assert (best.precision, best.runtime.provider) == ("int4_weight_only", "CPUExecutionProvider")
    want = best.predicted.generation
    host = report.device("host")
    m = next(x for x in host.measured if x.precision == "int4_weight_only")
    assert m.not_compared is None and m.best_plan_over_measured == round(best.predicted.latency_ms / 0.0319, 4)
    by = {x.name: x for x in m.generation.metrics}
    assert by["ttft_ms"].predicted == want.ttft_ms and by["ttft_ms"].measured == 0.3868
    assert by["ttft_ms"].predicted_over_measured == round(want.ttft_ms / 0.3868, 4)
    assert by["decode_tokens_per_s"].predicted == want.decode_tokens_per_s
    assert by["peak_memory_mb"].predicted == want.peak_memory_mb
    # an fp32 bundle is not the best plan: M alone, with the reason
    other = next(x for x in host.measured if x.precision == "fp32")
    assert other.generation.not_compared.startswith("not this device's best plan")
    assert all(x.predicted is None for x in other.generation.metrics)


def test_report_markdown_and_html_show_the_generation_table(report, tmp_path):
    md = render_markdown(report)
    assert "| time to first token |" in md and "| decode |" in md and "| peak memory |" in md
    from edge_sdk.reporting import write_report

    paths = write_report(report, tmp_path / "rep")
    html = paths["report.html"].read_text()
    assert "<h3>Generation" in html and "time to first token" in html


def test_a_result_carrying_its_bundles_prediction_is_compared_with_it_not_the_best_plan(tmp_path):
    """An fp32 bundle (not the best plan) measured with its own plan's generation prediction: P/M against that."""
    own = PRED.model_copy(update={"ttft_ms": 1.0, "decode_tokens_per_s": 3000.0})
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "r.json").write_text(json.dumps(decoder_result(
        precision="fp32", predicted_generation=own.model_dump())))
    rep = build_report(TINY, devices="host", results_dir=tmp_path, tflite="map", calibration=False)
    m = rep.device("host").measured[0]
    by = {x.name: x for x in m.generation.metrics}
    assert m.generation.not_compared is None and by["ttft_ms"].predicted == 1.0
    assert by["decode_tokens_per_s"].predicted_over_measured == round(3000.0 / 20243.02, 4)
