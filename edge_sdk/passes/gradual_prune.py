"""How is pruning interleaved with recovery (gradual pruning)?

One-shot pruning of 50 % of the FFN throws the student far from the teacher; pruning in K increments with
distillation between lets each step start from a recovered model and re-ranks what remains (importance is recomputed
on the current student every time). The final architecture is exactly the one-shot one (counts are computed against
the original model), and the distillation budget is split evenly over the increments.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterable, Sequence

from torch import nn

from ..schemas.passes import DistillConfig, StructuredPruneConfig
from .distill import DistillResult, Progress, distill
from .prune import structured_prune
from .prune_importance import Batch
from .prune_surgery import PruningRecord


def prune_gradually(teacher: nn.Module, prune_config: StructuredPruneConfig, distill_config: DistillConfig, *,
                    calibration: Sequence[Batch] | None,
                    training: Callable[[int], Iterable[Batch]] | Sequence[Batch],
                    progress: Progress | None = None,
                    log: Callable[[str], None] | None = None) -> tuple[nn.Module, PruningRecord, list[DistillResult]]:
    """A pruned + recovered copy of `teacher` (which is not modified)."""
    student = copy.deepcopy(teacher)
    k_total = distill_config.gradual_steps
    record: PruningRecord | None = None
    results: list[DistillResult] = []
    for k in range(1, k_total + 1):
        record = structured_prune(student, prune_config, batches=calibration, record=record, fraction=k / k_total,
                                  log=log)
        steps = distill_config.max_steps * k // k_total - distill_config.max_steps * (k - 1) // k_total
        seconds = distill_config.max_seconds / k_total if distill_config.max_seconds else None
        result = distill(student, teacher, training, distill_config, layer_map=record.kept_layers,
                         progress=progress, max_steps=steps, max_seconds=seconds)
        results.append(result)
        if log:
            log(f"gradual {k}/{k_total}: {result.summary()}")
    assert record is not None
    return student, record, results
