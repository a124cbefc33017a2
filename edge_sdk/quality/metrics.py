"""How close is a compressed model's output to the original's?

- cosine per input between candidate and reference vectors (mean and worst case): did each embedding survive?
- Spearman rank correlation of the two pairwise-similarity matrices: does the candidate still *rank* pairs of
  inputs the same way (what retrieval and clustering depend on), even if every vector moved a little?
- top-1 agreement for classifiers: does argmax of the logits still pick the same class?

Spearman is implemented here with numpy (average ranks for ties, then Pearson on the ranks) instead of
scipy.stats.spearmanr: scipy is not a dependency of edge-sdk (it is only present when something else pulls it
in), and a quality number must not depend on which optional package happens to be installed. The test suite
checks this implementation against scipy when scipy is there.
"""

from __future__ import annotations

import numpy as np


def _as_2d(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a (samples, features) array, got shape {a.shape}")
    return a


def _check_pair(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, cand = _as_2d("reference", reference), _as_2d("candidate", candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"reference shape {ref.shape} != candidate shape {cand.shape}")
    if not (np.isfinite(ref).all() and np.isfinite(cand).all()):
        raise ValueError("non-finite values (NaN/inf) in " + ("reference" if not np.isfinite(ref).all()
                                                              else "candidate") + " outputs")
    return ref, cand


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)


def cosine_per_sample(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    ref, cand = _check_pair(reference, candidate)
    return np.sum(_unit(ref) * _unit(cand), axis=1)


def mean_cosine(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(cosine_per_sample(reference, candidate).mean())


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get the average of the ranks they span (scipy's 'average' method)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # boundaries of runs of equal values
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    run_id = np.cumsum(starts) - 1
    run_start = np.flatnonzero(starts)
    run_end = np.r_[run_start[1:], x.size]          # exclusive
    avg_rank = (run_start + run_end + 1) / 2.0       # mean of (start+1 .. end)
    ranks = np.empty_like(x)
    ranks[order] = avg_rank[run_id]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two equally long 1-D samples. NaN when either side is constant (no ranking exists)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"spearman: lengths differ ({x.size} vs {y.size})")
    if x.size < 2:
        raise ValueError("spearman: need at least 2 values")
    rx, ry = rankdata(x) - (x.size + 1) / 2.0, rankdata(y) - (y.size + 1) / 2.0
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    if denom == 0:
        return float("nan")
    return float((rx * ry).sum() / denom)


def similarity_spearman(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Spearman between the upper triangles (i < j) of the cosine-similarity matrices of the two sides."""
    ref, cand = _check_pair(reference, candidate)
    if ref.shape[0] < 3:
        raise ValueError(f"similarity_spearman: need at least 3 samples, got {ref.shape[0]}")
    iu = np.triu_indices(ref.shape[0], k=1)
    s_ref = (_unit(ref) @ _unit(ref).T)[iu]
    s_cand = (_unit(cand) @ _unit(cand).T)[iu]
    return spearman(s_ref, s_cand)


def top1_agreement(reference_logits: np.ndarray, candidate_logits: np.ndarray) -> float:
    ref, cand = _check_pair(reference_logits, candidate_logits)
    return float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1)))
