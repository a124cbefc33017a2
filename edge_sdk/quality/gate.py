"""Did quality survive compression, within the user's budget?

`evaluate` runs the uncompressed reference and the candidate artifact on the same inputs and measures how far
apart they are; `check` turns the measurement into a yes/no against `max_quality_drop`. The one knob,
`max_quality_drop` (d), bounds every check the build can measure:

- always:            mean cosine between candidate and reference outputs ≥ 1 − d (the number that means the same
                     for embedders and classifiers);
- classifiers:       top-1 agreement with the reference ≥ 1 − d, on the evaluation inputs and on the task inputs
                     (cosine of logits alone passes a build that flips 6 % of the labels);
- with --task-data:  retained task accuracy (candidate / uncompressed; classifier argmax, or a linear probe fitted
                     on the uncompressed model's embeddings for embedding models, see task.py) ≥ 1 − d.

A failed check raises QualityGateError (exit 4) carrying the numbers, so the build can fall back to the next plan
or stop.
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
from .task import evaluate_task
from .task_data import TaskData

Task = Literal["embedding", "classification"]


def evaluate(reference_fn: EmbedFn | np.ndarray, candidate_fn: EmbedFn, inputs: Inputs | EvalData, *,
             task: Task | None = None, max_quality_drop: float | None = None,
             reference: str = "uncompressed model", eval_data: str | None = None,
             task_data: TaskData | None = None, task_reference: np.ndarray | None = None,
             id2label: dict[str, str] | None = None) -> QualityReport:
    """Measure the candidate against the reference on `inputs` (an EvalData or a plain list/array).

    Metrics: mean_cosine, min_cosine, spearman (pairwise-similarity ranking, >= 3 inputs), and top1_agreement
    for classification. `task=None` decides from the functions: either one whose `output` is "logits" makes it
    a classification. `passed` is decided against `max_quality_drop` when given, else True (no budget).
    `reference_fn` may also be the reference outputs already computed on these inputs (a build that tries several
    plans runs the uncompressed model once). With `task_data` the task accuracy of both models is measured too
    (`task_reference`: the reference outputs on `task_data.inputs`, else `reference_fn` is run on them;
    `id2label`: a classifier's class names, to read string labels).
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
    tq = None
    if task_data is not None:
        t_ref = task_reference if task_reference is not None else (
            reference_fn if isinstance(reference_fn, np.ndarray) else reference_fn(task_data.inputs))
        tq = evaluate_task(np.asarray(t_ref, dtype=np.float32), np.asarray(candidate_fn(task_data.inputs)),
                           task_data, classifier=task == "classification", id2label=id2label)
        found.append(QualityMetric(name="task_accuracy", value=tq.candidate_accuracy, reference="labels"))
        found.append(QualityMetric(name="task_accuracy_retained", value=tq.retained,
                                   reference=f"{reference} ({tq.reference_accuracy:.4f})"))
        if tq.top1_agreement is not None:
            found.append(QualityMetric(name="task_top1_agreement", value=tq.top1_agreement, reference=reference))
    drop = max(0.0, 1.0 - mean_cos)
    rep = QualityReport(eval_data=eval_data or f"{len(inputs)} inputs", samples=len(inputs), metrics=found,
                        max_quality_drop=max_quality_drop, cosine_drop=drop, passed=True, task=tq)
    if max_quality_drop is None:
        return rep
    failed = failures(rep, max_quality_drop)
    return rep.model_copy(update={"passed": not failed, "failed": failed})


def metric(report: QualityReport, name: str) -> float | None:
    return next((m.value for m in report.metrics if m.name == name), None)


# metric → what the gate calls it; each must be >= 1 - max_quality_drop
GATED = {"mean_cosine": "mean cosine", "top1_agreement": "top-1 agreement",
         "task_top1_agreement": "top-1 agreement on the task data",
         "task_accuracy_retained": "task accuracy retained"}


def failures(report: QualityReport, max_quality_drop: float) -> list[str]:
    """One line per gated metric below 1 − max_quality_drop (empty: the report passes)."""
    floor = 1.0 - max_quality_drop
    out = []
    for m in report.metrics:
        if m.name in GATED and m.value < floor - 1e-12:
            out.append(f"{GATED[m.name]} {m.value:.4f} < {floor:.4f}")
    return out


def check(report: QualityReport, max_quality_drop: float, *, label: str = "candidate") -> QualityReport:
    """The report with the budget recorded and passed=True, or QualityGateError with the measured numbers."""
    if not 0 <= max_quality_drop <= 2:
        raise ValueError(f"max_quality_drop must be in [0, 2], got {max_quality_drop}")
    failed = failures(report, max_quality_drop)
    if failed:
        extras = ", ".join(f"{m.name} {m.value:.4f}" for m in report.metrics)
        raise QualityGateError(
            f"{label}: {'; '.join(failed)} (max_quality_drop={max_quality_drop:g}; cosine drop "
            f"{report.cosine_drop:.4f}); measured {extras} on "
            f"{report.eval_data}" + (f" and {report.task.task_data}" if report.task else ""))
    return report.model_copy(update={"max_quality_drop": max_quality_drop, "passed": True, "failed": []})
