"""Which benchmark results belong in this report, and how do they compare with the predictions?

Results live under `results/<target>/<timestamp>.json` (benchmark/results.py). A report reads every JSON file there;
a file that is not a BenchResult, or that measured another model, another bundle, or a device outside the
selection, is listed with the reason and skipped — one stray file must not sink the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..schemas.bench import BenchResult, input_label
from ..errors import format_validation_error
from ..schemas.report import IgnoredResult, LayerProfile, Measurement
from .generation import compare_generation, measured_generation

TOP_OPS = 10


@dataclass
class MatchedResult:
    device: str
    measurement: Measurement


def _model_keys(model: str, model_name: str) -> set[str]:
    keys = {model.strip().lower(), model_name.strip().lower()}
    try:
        from ..modelspec.sources import BUILTIN_MODELS

        if model.strip().lower() in BUILTIN_MODELS:
            keys.add(BUILTIN_MODELS[model.strip().lower()].lower())
    except ImportError:  # pragma: no cover - modelspec is part of the package
        pass
    return keys


def _comparable(r: BenchResult):
    """The batch result a prediction is comparable with: predictions are for padded inputs (the full seq_len) at
    batch 1, so prefer that run; a run on real (shorter) inputs is reported beside it, not compared."""
    for b in r.batches:
        if b.inputs == "padded" and b.batch == 1:
            return b
    return next((b for b in r.batches if b.batch == 1), r.batches[0])


def _inputs_text(b) -> str:
    label = input_label(b.inputs, b.shapes)
    return label if label == "images" else f"{label} inputs"


def measured_on(r: BenchResult) -> str | None:
    """The device profile of the machine that ran the benchmark: the target's profile; for `local` runs this
    machine ('host'); else the profile the bundle was built for (a remote target without a profile)."""
    if r.target_profile:
        return r.target_profile
    if r.target == "local":
        return "host"
    return r.device


def layer_profile(r: BenchResult, rel: str) -> LayerProfile | None:
    op = r.op_profile
    if op is None:
        return None
    if not op.available:
        return LayerProfile(available=False, unavailable_reason=op.unavailable_reason, runtime=op.runtime)
    trace = str(Path(rel).parent / op.trace_file) if op.trace_file else None
    return LayerProfile(available=True, runtime=op.runtime, iterations=op.iterations, layers=op.layers,
                        top_ops=op.nodes[:TOP_OPS], layer_sum_ms=op.layer_sum_ms, other_ms=op.other_ms,
                        node_sum_ms=op.node_sum_ms, profiled_run_ms=op.run_ms, end_to_end_ms=op.end_to_end_ms,
                        end_to_end_source=op.end_to_end_source,
                        layer_sum_over_end_to_end=op.layer_sum_over_end_to_end, predicted_basis=op.predicted_basis,
                        trace_file=trace)


def _measurement(path: Path, r: BenchResult, base: Path, device: str) -> Measurement:
    chosen = _comparable(r)
    ratio = None
    if r.device and r.device != device:
        comparison = (f"bundle built for {r.device} but measured on {device}: its prediction is for another "
                      f"device, so no ratio")
    elif r.predicted_latency_ms and chosen.latency_ms.p50 > 0:
        ratio = r.predicted_latency_ms / chosen.latency_ms.p50
        comparison = (f"the bundle plan's prediction ({r.predicted_for or 'batch 1'}) / measured p50 of "
                      f"{_inputs_text(chosen)}, batch {chosen.batch}")
    else:
        comparison = "no prediction recorded with this result"
    others = [f"batch {b.batch}, {_inputs_text(b)}: p50 {b.latency_ms.p50:.4g} ms" for b in r.batches
              if b is not chosen]
    try:
        rel = str(path.relative_to(base))
    except ValueError:
        rel = str(path)
    return Measurement(file=rel, target=r.target, host=r.host, bundle_id=r.bundle_id, precision=r.precision,
                       runtime=r.runtime, provider_used=r.provider_used, fell_back=r.fell_back,
                       fallback_reason=r.fallback_reason, p50_ms=round(chosen.latency_ms.p50, 4),
                       mean_ms=round(chosen.latency_ms.mean, 4), iterations=chosen.iterations, batch=chosen.batch,
                       input_kind=input_label(chosen.inputs, chosen.shapes), started_at=r.started_at,
                       predicted_ms=r.predicted_latency_ms,
                       predicted_over_measured=round(ratio, 4) if ratio is not None else None,
                       comparison=comparison, other_runs=others, layer_profile=layer_profile(r, rel),
                       built_for=r.device, provider_requested=r.provider_requested,
                       generation=_generation(r))


def _generation(r: BenchResult):
    """Decoders: M, with P from the bundle's own plan when the result carries it (else compose.py compares with the
    device's best plan)."""
    gen = measured_generation(r)
    if gen is not None and r.predicted_generation is not None:
        gen = compare_generation(gen, r.predicted_generation)
    return gen


def collect_results(results_dir: str | Path | None, *, model: str, model_name: str, devices: set[str],
                    bundle_sha256: str | None = None) -> tuple[list[MatchedResult], list[IgnoredResult]]:
    """Matching results (device -> measurement) and the files skipped, each with its reason."""
    if results_dir is None:
        return [], []
    base = Path(results_dir)
    if not base.is_dir():
        return [], []
    keys = _model_keys(model, model_name)
    matched: list[MatchedResult] = []
    ignored: list[IgnoredResult] = []
    for path in sorted(base.rglob("*.json")):
        if path.name.endswith(".trace.json"):  # a profiled result's raw runtime trace, beside its result
            continue
        rel = str(path.relative_to(base))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            ignored.append(IgnoredResult(file=rel, reason=f"not readable JSON ({' '.join(str(exc).split())[:120]})"))
            continue
        try:
            r = BenchResult.model_validate(data)
        except ValidationError as exc:
            ignored.append(IgnoredResult(file=rel, reason="not a BenchResult: "
                                         + format_validation_error(rel, exc).split(": ", 1)[-1]))
            continue
        if bundle_sha256 is not None and r.bundle_sha256 != bundle_sha256:
            ignored.append(IgnoredResult(file=rel, reason=f"another bundle (manifest sha256 {r.bundle_sha256[:12]}…, "
                                                          f"expected {bundle_sha256[:12]}…)"))
            continue
        got = {(r.model or "").strip().lower(), (r.model_name or "").strip().lower()} - {""}
        if not got & keys:
            ignored.append(IgnoredResult(file=rel, reason=f"another model ({r.model_name or r.model or 'unnamed'}; "
                                                          f"this report is for {model_name})"))
            continue
        device = measured_on(r)
        if device is None:
            ignored.append(IgnoredResult(file=rel, reason="names no device profile (device/target_profile empty)"))
            continue
        if device not in devices:
            ignored.append(IgnoredResult(file=rel, reason=f"device '{device}' is not among the selected devices"))
            continue
        matched.append(MatchedResult(device=device, measurement=_measurement(path, r, base, device)))
    return matched, ignored
