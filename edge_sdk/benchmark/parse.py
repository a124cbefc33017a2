"""How the runner's final JSON line becomes a BenchResult (statistics, prediction comparison)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..device.stats import CI_METHOD, median_ci, spread
from ..errors import RemoteError
from ..schemas.bench import (BatchResult, BenchResult, BenchSettings, GenerationStats, MachineState, RoundSpread,
                             SkippedRun, TegraStats, input_label)
from ..schemas.plan import Plan
from .op_profile import build_op_profile
from .stats import latency_stats, throughput_per_s


def _rounds(p50s: list[float] | None) -> RoundSpread | None:
    if not p50s or len(p50s) < 2:
        return None
    sp = spread([float(x) for x in p50s])
    return RoundSpread(p50s_ms=[float(x) for x in p50s], min_ms=sp["min"], median_ms=sp["median"], max_ms=sp["max"],
                       relative=sp["relative"])


def _batch_result(run: dict[str, Any]) -> BatchResult:
    samples = [float(x) for x in run["latencies_ms"]]
    ci = median_ci(samples)
    return BatchResult(batch=run["batch"], inputs=run["inputs"], shapes=run.get("shapes") or {},
                       iterations=len(samples), latency_ms=latency_stats(samples),
                       throughput_per_s=throughput_per_s(samples, run["batch"]), wall_s=run.get("wall_s", 0.0),
                       samples_ms=samples, p50_ci95_ms=ci, p50_ci_method=CI_METHOD if ci else None,
                       rounds=_rounds(run.get("round_p50_ms")))


def _op_profile(event: dict[str, Any], done: list[BatchResult], plan: Plan | None, profile_name: str | None,
                profile=None, used: str | None = None):
    raw = event.get("op_profile")
    if not raw:
        return None
    pair = next((b for b in done if b.inputs == raw.get("inputs") and b.batch == raw.get("batch")), None)
    return build_op_profile(raw, plan=plan, profile_name=profile_name, profile=profile, calibration_used=used,
                            timed_p50_ms=pair.latency_ms.p50 if pair else None)


def _compare(prediction: dict[str, Any] | None, batches: list[BatchResult], measured_on: str) -> dict[str, Any]:
    """Put the plan's predicted latency next to the measured median of the matching batch size.

    The plan predicts one batch size at its seq_len, so padded inputs are preferred for the comparison.
    """
    if not prediction:
        return {}
    out: dict[str, Any] = {"predicted_latency_ms": float(prediction["latency_ms"])}
    pb, seq, dev = prediction.get("batch") or 1, prediction.get("seq_len"), prediction.get("device")
    out["predicted_for"] = f"batch {pb}" + (f", seq_len {seq}" if seq else "") + (f", on {dev}" if dev else "")
    same = [b for b in batches if b.batch == pb]
    if not same:
        return out
    pick = next((b for b in same if b.inputs == "padded"), same[0])
    shape = next(iter(pick.shapes.values()), None)
    label = input_label(pick.inputs, pick.shapes)
    out["compared_with"] = (f"p50 of {label if label == 'images' else label + ' inputs'}, batch {pick.batch}"
                            + (f", shape {shape}" if shape else "") + f", measured on {measured_on}")
    out["predicted_over_measured"] = out["predicted_latency_ms"] / pick.latency_ms.p50
    return out


def result_from_runner(event: dict[str, Any], *, settings: BenchSettings, target: str, bundle_id: str,
                       host: str | None = None, release: str | None = None, target_profile: str | None = None,
                       bundle_path: str | None = None, plan: Plan | None = None,
                       measured_on: str | None = None, calibration: bool = True,
                       calibrations_dir=None) -> BenchResult:
    """BenchResult from the `edge_device bench` {"event": "result", ...} record; `bundle_id` is the content id.
    `plan`: the bundle's plan (its ModelSpec maps profiled ops to layers); `measured_on`: the device profile of the
    machine that ran it (for per-layer predictions and the calibrated prediction; `calibration=False` keeps the
    bundle's build-time prediction)."""
    from .prediction import calibrated_prediction, calibration_reference, compare_probe, device_profile

    profile_name = measured_on or event.get("device")
    profile, used, cal = device_profile(profile_name, calibration=calibration, calibrations_dir=calibrations_dir)
    recosted, basis = calibrated_prediction(plan, profile, used)
    prediction = event.get("plan_prediction")
    if prediction and recosted is not None:
        prediction = {**prediction, "latency_ms": recosted.latency_ms}
    generation_predicted = None
    if event.get("generation"):  # decoders: TTFT, prefill and decode tokens/s, peak memory (planner/generation.py)
        source = recosted if recosted is not None else (plan.predicted if plan is not None else None)
        generation_predicted = source.generation if source is not None else None
    try:
        runs = event["runs"]
        done = [_batch_result(r) for r in runs if "skipped" not in r]
        skipped = [SkippedRun(batch=r["batch"], inputs=r["inputs"], reason=r["skipped"]) for r in runs
                   if "skipped" in r]
        kinds = list(dict.fromkeys(r["inputs"] for r in runs))
        art = event["artifact"]
        tegra = event.get("tegrastats")
        machine = MachineState(**event["machine"]) if event.get("machine") else None
        if machine is not None and machine.reference_probe is not None:
            ref_ms, ref_threads = calibration_reference(cal)
            compare_probe(machine, ref_ms, same_threads=ref_threads == settings.threads)
        return BenchResult(
            model=event.get("model_id"), model_name=event.get("model_name"), bundle_id=bundle_id,
            bundle_path=bundle_path, bundle_sha256=event["manifest_sha256"], target=target, host=host,
            release=release, device=event.get("device"), target_profile=target_profile,
            artifact=art["path"], format=art.get("format"), precision=art.get("precision"),
            runtime=event["runtime"], runtime_module=event["runtime_module"],
            runtime_version=event.get("runtime_version"), provider_requested=event["provider_requested"],
            provider_used=event["provider_used"], fell_back=event["fell_back"],
            fallback_reason=event.get("fallback_reason"), threads=event.get("threads"),
            cpu_count=event.get("cpu_count"), cpu_model=event.get("cpu_model"), board=event.get("board"),
            arch=event["arch"], os=event.get("os"), python_version=event["python_version"],
            numpy_version=event.get("numpy_version"),
            input_kind="+".join(kinds), warmup=event["warmup"], iterations=settings.iterations,
            duration_s=settings.duration_s, latency_ms=done[0].latency_ms if done else None,
            throughput_per_s=done[0].throughput_per_s if done else None, batches=done, skipped=skipped,
            model_load_ms=event["model_load_ms"], first_inference_ms=event["first_inference_ms"],
            rss_before_load_mb=event.get("rss_before_load_mb"), peak_rss_mb=event.get("peak_rss_mb"),
            peak_rss_source=event.get("peak_rss_source"), ru_maxrss_mb=event.get("ru_maxrss_mb"),
            tegrastats=TegraStats(**tegra) if tegra else None,
            runner_version=event["runner_version"], started_at=event["started_at"],
            finished_at=event["finished_at"], repeat=event.get("repeat") or 1, machine=machine,
            warnings=list(machine.warnings) if machine else [],
            op_profile=_op_profile(event, done, plan, profile_name, profile, used),
            generation=GenerationStats(**event["generation"]) if event.get("generation") else None,
            predicted_generation=generation_predicted,
            prediction_basis=basis if prediction else None,
            **_compare(prediction, done, host or target),
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        detail = exc.errors()[0] if isinstance(exc, ValidationError) else repr(exc)
        raise RemoteError(f"the runner's result line is malformed ({detail}); was the bundle built by "
                          f"another edge-sdk version?") from None
