"""How is a layer stack split into pipeline-parallel stages? Balanced by predicted time, exactly."""

from __future__ import annotations


def balance_stages(block_ms: float, num_blocks: int, pp: int, first_extra_ms: float,
                   last_extra_ms: float) -> list[tuple[int, int]]:
    """Split blocks [0, n) into pp contiguous stages: minimise the slowest stage, then the spread (sum of squares).
    Embeddings add to the first stage, the head to the last. Exact dynamic programme, O(pp·n²)."""
    n = num_blocks
    if pp <= 1 or n <= 1:
        return [(0, n - 1)]
    pp = min(pp, n)
    cost = [block_ms] * n
    cost[0] += first_extra_ms
    cost[-1] += last_extra_ms
    prefix = [0.0]
    for c in cost:
        prefix.append(prefix[-1] + c)
    inf = (float("inf"), float("inf"))
    # best[k][i]: (max, sumsq) splitting the first i blocks into k stages
    best = [[inf] * (n + 1) for _ in range(pp + 1)]
    cut = [[0] * (n + 1) for _ in range(pp + 1)]
    best[0][0] = (0.0, 0.0)
    for k in range(1, pp + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                prev = best[k - 1][j]
                if prev[0] == float("inf"):
                    continue
                t = prefix[i] - prefix[j]
                cand = (max(prev[0], t), prev[1] + t * t)
                if cand < best[k][i]:
                    best[k][i], cut[k][i] = cand, j
    stages, i = [], n
    for k in range(pp, 0, -1):
        j = cut[k][i]
        stages.append((j, i - 1))
        i = j
    return stages[::-1]
