"""Does the compressed model still do its task? Accuracy on labelled data (`--task-data`), against the original.

- Classifiers (the model outputs logits): accuracy of the argmax against the labels, for the uncompressed model and
  for the candidate, and their top-1 agreement on the task inputs. A label names a class of the model: one of its
  `id2label` names, or a class index.
- Embedding models: a linear probe — StandardScaler + multinomial LogisticRegression (scikit-learn), the usual
  protocol for judging self-supervised representations — fitted on the *uncompressed* model's embeddings of the
  train split and scored on the test split with each model's embeddings. That is what an application sees when it
  swaps the compressed model in under a head trained on the original, and it is the number the gate uses. A probe
  re-fitted on the candidate's own train embeddings is reported beside it (how much of the information survived
  if the head is retrained; usually a little higher).

`retained` = candidate accuracy / uncompressed accuracy; the gate holds it to ≥ 1 − max_quality_drop.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..schemas.bundle import TaskQuality
from .task_data import TaskData

TEST_FRACTION = 0.5
SPLIT_SEED = 0


def stratified_split(labels: np.ndarray, train_mask: np.ndarray | None = None, *,
                     test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): the given mask, else per class a seeded shuffle with `test_fraction` of it
    (at least one row) held out. Deterministic: the same rows on every run and machine."""
    if train_mask is not None:
        return np.flatnonzero(train_mask), np.flatnonzero(~train_mask)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        k = min(len(rows) - 1, max(1, int(round(len(rows) * test_fraction)))) if len(rows) > 1 else 0
        test.extend(rows[:k])
        train.extend(rows[k:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def fit_linear_probe(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0):
    """A fitted scikit-learn pipeline (scaler + logistic regression); `.score(X, y)` is its accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    return probe.fit(np.asarray(embeddings, dtype=np.float64), labels)


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    return float(fit_linear_probe(train_x, train_y).score(np.asarray(test_x, dtype=np.float64), test_y))


def _class_indices(task: TaskData, num_logits: int, id2label: dict[str, str] | None) -> np.ndarray:
    """The model's class index of every label: by the model's label names, else labels that are class indices."""
    names = {str(v): int(k) for k, v in (id2label or {}).items()}
    if all(c in names for c in task.classes):
        table = [names[c] for c in task.classes]
    elif all(c.lstrip("-").isdigit() and 0 <= int(c) < num_logits for c in task.classes):
        table = [int(c) for c in task.classes]
    else:
        bad = next(c for c in task.classes if c not in names and not (c.isdigit() and int(c) < num_logits))
        known = f"its labels {sorted(names)} or " if names else ""
        raise InputError(f"--task-data {task.name}: label {bad!r} is not a class of this classifier (expected "
                         f"{known}class indices 0..{num_logits - 1})")
    return np.asarray(table, dtype=np.int64)[task.labels]


def _retained(candidate: float, reference: float) -> float:
    return candidate / reference if reference > 0 else 1.0


def evaluate_task(reference_out: np.ndarray, candidate_out: np.ndarray, task: TaskData, *, classifier: bool,
                  id2label: dict[str, str] | None = None) -> TaskQuality:
    """Task accuracy of both models on `task` (outputs already computed on `task.inputs`, in its order)."""
    ref = np.asarray(reference_out, dtype=np.float64)
    cand = np.asarray(candidate_out, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2 or len(ref) != len(task):
        raise ValueError(f"task outputs: reference {ref.shape}, candidate {cand.shape}, {len(task)} labels")
    if not (np.isfinite(ref).all() and np.isfinite(cand).all()):
        raise ValueError("non-finite values (NaN/inf) in task outputs")
    if classifier:
        y = _class_indices(task, ref.shape[1], id2label)
        ref_top, cand_top = ref.argmax(1), cand.argmax(1)
        ref_acc, cand_acc = float(np.mean(ref_top == y)), float(np.mean(cand_top == y))
        return TaskQuality(task_data=task.name, method="classifier", train_samples=0, test_samples=len(y),
                           reference_accuracy=ref_acc, candidate_accuracy=cand_acc,
                           retained=_retained(cand_acc, ref_acc), top1_agreement=float(np.mean(ref_top == cand_top)))
    train, test = stratified_split(task.labels, task.train_mask)
    if len(np.unique(task.labels[train])) < 2:
        raise InputError(f"--task-data {task.name}: the train split has fewer than 2 classes; a linear probe needs "
                         f"examples of at least 2")
    y = task.labels
    probe = fit_linear_probe(ref[train], y[train])
    ref_acc = float(probe.score(ref[test], y[test]))
    cand_acc = float(probe.score(cand[test], y[test]))
    refit = linear_probe_accuracy(cand[train], y[train], cand[test], y[test])
    return TaskQuality(task_data=task.name, method="linear_probe", train_samples=len(train), test_samples=len(test),
                       reference_accuracy=ref_acc, candidate_accuracy=cand_acc, candidate_refit_accuracy=refit,
                       retained=_retained(cand_acc, ref_acc))
