"""How does a decoder benchmark compare with its plan? TTFT, prefill and decode tokens/s and peak memory, P and M.

P is a plan's `predicted.generation` (planner/generation.py); M is a BenchResult's `generation` summary and its
peak RSS. TTFT and prefill are compared only when the measured prompt has the length the prediction is for (the
build writes the benchmark prompt at the plan's `prompt_tokens`). Peak RSS is the whole runner process (Python,
numpy, the runtime's libraries), which the prediction's runtime overhead only estimates.

`decoder_pm_lines(prediction, result)` is what `edge-sdk bench` prints; `report` puts the same comparison in
every decoder Measurement.
"""

from __future__ import annotations

from typing import Any

from ..schemas.bench import BenchResult
from ..schemas.plan import GenerationPrediction, Prediction
from ..schemas.report import GenerationComparison, GenerationMetric

#: (name, label, unit, higher is better)
METRICS = (("ttft_ms", "time to first token", "ms", False),
           ("prefill_tokens_per_s", "prefill", "tokens/s", True),
           ("decode_tokens_per_s", "decode", "tokens/s", True),
           ("peak_memory_mb", "peak memory", "MB", False))
RSS_NOTE = "M is the runner process's peak RSS, Python and runtime libraries included"


def generation_prediction(prediction: Any) -> GenerationPrediction | None:
    """The generation prediction in a Prediction, a plan's `predicted` dict, a GenerationPrediction or its dict."""
    if prediction is None:
        return None
    if isinstance(prediction, GenerationPrediction):
        return prediction
    if isinstance(prediction, Prediction):
        return prediction.generation
    if isinstance(prediction, dict):
        data = prediction.get("generation", prediction)
        if isinstance(data, dict) and "prompt_tokens" in data:
            return GenerationPrediction.model_validate(data)
    return None


def measured_generation(result: BenchResult) -> GenerationComparison | None:
    """M only (no prediction yet) for a decoder BenchResult; None for other results."""
    g = result.generation
    if g is None:
        return None
    values = {"ttft_ms": g.ttft_ms, "prefill_tokens_per_s": g.prefill_tokens_per_s,
              "decode_tokens_per_s": g.decode_tokens_per_s, "peak_memory_mb": result.peak_rss_mb}
    metrics = [GenerationMetric(name=n, label=label, unit=unit, measured=values[n],  # type: ignore[arg-type]
                                higher_is_better=hib, note=RSS_NOTE if n == "peak_memory_mb" else None)
               for n, label, unit, hib in METRICS]
    return GenerationComparison(engine=g.engine, prompt_tokens=g.prompt_tokens, new_tokens=g.new_tokens,
                                metrics=metrics, not_compared="no prediction")


def compare_generation(measured: GenerationComparison, prediction: Any,
                       why_not: str | None = None) -> GenerationComparison:
    """Set P and P/M beside M. `why_not`: the reason the prediction does not apply (then M stays alone)."""
    pred = None if why_not else generation_prediction(prediction)
    if pred is None:
        return measured.model_copy(update={"not_compared": why_not or "the plan has no generation prediction "
                                                                       "(planned before edge-sdk predicted it)"})
    same_prompt = pred.prompt_tokens == measured.prompt_tokens
    values = {"ttft_ms": pred.ttft_ms, "prefill_tokens_per_s": pred.prefill_tokens_per_s,
              "decode_tokens_per_s": pred.decode_tokens_per_s, "peak_memory_mb": pred.peak_memory_mb}
    metrics = []
    for m in measured.metrics:
        p = values[m.name]
        note = m.note
        ratio = None
        if m.name in ("ttft_ms", "prefill_tokens_per_s") and not same_prompt:
            note = (f"predicted for a {pred.prompt_tokens}-token prompt, measured with {measured.prompt_tokens} "
                    f"tokens: not compared")
        elif m.measured:
            ratio = round(p / m.measured, 4)
        metrics.append(m.model_copy(update={"predicted": p, "predicted_over_measured": ratio, "note": note}))
    return measured.model_copy(update={"metrics": metrics, "predicted_prompt_tokens": pred.prompt_tokens,
                                       "context": pred.context, "not_compared": None})


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    text = f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
    return f"{text} {unit}"


def verdict(m: GenerationMetric) -> str:
    """'slower than predicted' / 'faster than predicted' (or more/less memory) for one P/M."""
    r = m.predicted_over_measured
    if r is None:
        return ""
    if m.name == "peak_memory_mb":
        return "more memory than predicted" if r < 1 else "less memory than predicted"
    worse = r > 1 if m.higher_is_better else r < 1
    return "slower than predicted" if worse else "faster than predicted"


def comparison_lines(gc: GenerationComparison) -> list[str]:
    """One line per metric: `label: P x, M y, P/M z (verdict)`."""
    head = (f"generation ({gc.engine}, {gc.prompt_tokens}-token prompt, {gc.new_tokens} new tokens"
            + (f"; decode predicted at context {gc.context}" if gc.context else "") + ")")
    out = [head + (f": not compared ({gc.not_compared})" if gc.not_compared else "")]
    for m in gc.metrics:
        ratio = "—" if m.predicted_over_measured is None else f"{m.predicted_over_measured:.2f}"
        tail = "; ".join(x for x in (verdict(m), m.note) if x)
        out.append(f"  {m.label}: P {fmt_value(m.predicted, m.unit)}, M {fmt_value(m.measured, m.unit)}, P/M {ratio}"
                   + (f" ({tail})" if tail else ""))
    return out


def decoder_pm_lines(prediction: Any, result: BenchResult) -> list[str]:
    """What `edge-sdk bench` prints for a decoder bundle: P, M and P/M for TTFT, prefill and decode tokens/s and
    peak memory. `prediction`: the bundle plan's Prediction (manifest.plan.predicted), its dict, or its
    GenerationPrediction; None prints M alone. [] when `result` is not a decoder benchmark."""
    measured = measured_generation(result)
    if measured is None:
        return []
    return comparison_lines(compare_generation(measured, prediction))
