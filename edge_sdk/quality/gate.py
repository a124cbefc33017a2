"""Did quality survive compression, within the user's budget?

`evaluate` runs the uncompressed reference and the candidate artifact on the same inputs and measures how far
apart they are; `check` turns the measurement into a yes/no against `max_quality_drop`. The budget is on
cosine: drop = 1 − mean cosine between candidate and reference outputs, the one number that means the same for
embedders and classifiers (for classifiers, top-1 agreement is reported beside it). A failed check raises
QualityGateError (exit 4) carrying the numbers, so the build can fall back to the next plan or stop.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ..schemas.bundle import QualityMetric, QualityReport
from ..errors import QualityGateError
from . import metrics
from .eval_data import EvalData
from .runners import EmbedFn, Inputs

Task = Literal["embedding", "classification"]


def evaluate(reference_fn: EmbedFn | np.ndarray, candidate_fn: EmbedFn, inputs: Inputs | EvalData, *,
             task: Task | None = None, max_quality_drop: float | None = None,
             reference: str = "uncompressed model", eval_data: str | None = None) -> QualityReport:
    """Measure the candidate against the reference on `inputs` (an EvalData or a plain list/array).

    Metrics: mean_cosine, min_cosine, spearman (pairwise-similarity ranking, >= 3 inputs), and top1_agreement
    for classification. `task=None` decides from the functions: either one whose `output` is "logits" makes it
    a classification. `passed` is decided against `max_quality_drop` when given, else True (no budget).
    `reference_fn` may also be the reference outputs already computed on these inputs (a build that tries several
    plans runs the uncompressed model once).
    """
    if isinstance(inputs, EvalData):
        eval_data = eval_data or inputs.name
        inputs = inputs.inputs
    if len(inputs) == 0:
        raise ValueError("evaluate: no inputs")
    ref = np.asarray(reference_fn if isinstance(reference_fn, np.ndarray) else reference_fn(inputs), dtype=np.float32)
    cand = np.asarray(candidate_fn(inputs), dtype=np.float32)
    if task is None:
        outs = (getattr(reference_fn, "output", None), getattr(candidate_fn, "output", None))
        task = "classification" if "logits" in outs else "embedding"
    cos = metrics.cosine_per_sample(ref, cand)
    mean_cos = float(cos.mean())
    found = [QualityMetric(name="mean_cosine", value=mean_cos, reference=reference),
             QualityMetric(name="min_cosine", value=float(cos.min()), reference=reference)]
    if len(ref) >= 3:
        rho = metrics.similarity_spearman(ref, cand)
        if not math.isnan(rho):
            found.append(QualityMetric(name="spearman", value=rho, reference=reference))
    if task == "classification":
        found.append(QualityMetric(name="top1_agreement", value=metrics.top1_agreement(ref, cand),
                                   reference=reference))
    drop = max(0.0, 1.0 - mean_cos)
    return QualityReport(eval_data=eval_data or f"{len(inputs)} inputs", samples=len(inputs), metrics=found,
                         max_quality_drop=max_quality_drop, cosine_drop=drop,
                         passed=True if max_quality_drop is None else drop <= max_quality_drop)


def metric(report: QualityReport, name: str) -> float | None:
    return next((m.value for m in report.metrics if m.name == name), None)


def check(report: QualityReport, max_quality_drop: float, *, label: str = "candidate") -> QualityReport:
    """The report with the budget recorded and passed=True, or QualityGateError with the measured numbers."""
    if not 0 <= max_quality_drop <= 2:
        raise ValueError(f"max_quality_drop must be in [0, 2], got {max_quality_drop}")
    if report.cosine_drop > max_quality_drop:
        extras = ", ".join(f"{m.name} {m.value:.4f}" for m in report.metrics if m.name != "mean_cosine")
        raise QualityGateError(
            f"{label}: quality drop {report.cosine_drop:.4f} (mean cosine {1 - report.cosine_drop:.4f}) exceeds "
            f"the budget max_quality_drop={max_quality_drop:g}; {extras}; measured on {report.eval_data}")
    return report.model_copy(update={"max_quality_drop": max_quality_drop, "passed": True})
