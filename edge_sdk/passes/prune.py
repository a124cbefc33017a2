"""Structured pruning pass: how many heads, FFN neurons and layers go, and which ones (by importance, never first-N).

Counts come from the config against the ORIGINAL model (so a gradual schedule reaches the same totals as one-shot):
`round(head_ratio·H)` heads and `round(ffn_ratio·I)` FFN neurons are removed per layer, and `drop_layers` whole
layers. Layers go first (measured on the calibration data, or by rule), then heads and neurons are ranked on the
model that remains. `allocation="uniform"` cuts every layer alike; `"global"` keeps the same total by one ranking
over all layers (Fisher scores are in the same units everywhere), so layers that matter keep more (MiniLM, FFN −50 %:
widths 307…1434, one-shot cosine 0.831 vs 0.792 uniform, 0.939 vs 0.934 after 600 recovery steps; what the planner
plans). The physical cut and the record live in prune_surgery.py, the scores in prune_importance.py. After the cut,
with the unpruned teacher and enough data, every layer's FFN down projection is refitted by least squares to the
teacher's outputs (prune_reconstruct.py; `reconstruct_samples`, off by default): MiniLM FFN −50 % one-shot 0.831 →
0.901, but distillation after it ends lower than from the plain cut (0.936 vs 0.946 after 960 steps), so plans with
recovery do not use it.

Gradual pruning (`increments` > 1): prune in K increments with distillation (`recovery`, distill.py's training loop)
after each, re-ranking what remains every time; the recovery budget is split over the increments
(`final_recovery_share` for the last). Measured on MiniLM, FFN −50 %, 600 steps: 4 increments with half the budget
after the last scored 0.926 vs 0.934 one-shot, so the planner plans one-shot + distill. It is part of this pass, not
of distill: a plan's pass list is exactly what runs, and each pass works on the state it receives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from ..arch import base_model
from ..errors import InputError
from ..schemas.passes import StructuredPruneConfig
from .distill import DistillResult, Progress, distill, line_progress
from .prune_importance import Batch, head_ffn_scores, layers_to_drop
from .prune_surgery import PruningRecord, apply_keep, layout_of
from .registry import register
from .state import BuildState


#: `allocation="global"`: no layer keeps less than this share of its original heads / FFN neurons.
MIN_KEEP_FRACTION = 0.125


@dataclass(frozen=True)
class PruneTargets:
    """What remains after the full pass (counts in the original model's terms)."""

    heads_per_layer: int
    ffn_per_layer: int
    layers: int


def prune_targets(config: StructuredPruneConfig, record: PruningRecord) -> PruneTargets:
    """Counts that remain; InputError naming the field and the counts when nothing would remain."""
    h, i, n = record.num_heads, record.intermediate_size, record.num_layers
    for field in ("head_ratio", "ffn_ratio"):
        value = getattr(config, field)
        if not 0 <= value < 1:
            raise InputError(f"structured_prune.{field}={value}: must be in [0, 1)")
    if config.drop_layers < 0:
        raise InputError(f"structured_prune.drop_layers={config.drop_layers}: must be >= 0")
    drop_h = round(config.head_ratio * h)
    if drop_h >= h:
        raise InputError(f"structured_prune.head_ratio={config.head_ratio} removes {drop_h} of {h} attention heads "
                         f"per layer; at least 1 must remain (head_ratio < {(h - 0.5) / h:.3f} for this model)")
    drop_f = round(config.ffn_ratio * i)
    if drop_f >= i:
        raise InputError(f"structured_prune.ffn_ratio={config.ffn_ratio} removes {drop_f} of {i} FFN neurons per "
                         "layer; at least 1 must remain")
    if config.drop_layers >= n:
        raise InputError(f"structured_prune.drop_layers={config.drop_layers} but the model has {n} layers; "
                         "at least 1 must remain")
    return PruneTargets(h - drop_h, i - drop_f, n - config.drop_layers)


def _interpolate(start: int, end: int, fraction: float) -> int:
    return start - round((start - end) * fraction)


def structured_prune(model: nn.Module, config: StructuredPruneConfig, *, batches: Sequence[Batch] | None = None,
                     record: PruningRecord | None = None, fraction: float = 1.0,
                     teacher: nn.Module | None = None, reconstruct: Sequence[Batch] | None = None,
                     log: Callable[[str], None] | None = None) -> PruningRecord:
    """Prune `model` in place towards `config` (`fraction` of the way, for gradual schedules); returns the record.

    `record` describes what `model` already is (None: unpruned). `batches` are calibration inputs (tokenised text,
    or pixel_values for ViT); without them the data-driven importances fall back to weight norms (logged).
    `teacher` (the UNPRUNED model `record` indexes into) and `reconstruct` (inputs): after the cut, every layer's FFN
    down projection is refitted to the teacher's outputs (prune_reconstruct.py).
    """
    record = record or PruningRecord.identity(model)
    layout = layout_of(model)
    if record.family != layout.family:
        raise InputError(f"pruning record is for a {record.family} model, got {layout.family}")
    targets = prune_targets(config, record)
    if config.importance != "weight_norm" and not batches and log:
        log(f"structured_prune: no calibration data, '{config.importance}' falls back to weight_norm")
    importance = config.importance if batches else "weight_norm"
    batches = list(batches) if batches else None

    # 1) layers
    layer_goal = _interpolate(record.num_layers, targets.layers, fraction)
    n_drop = len(record.kept_layers) - layer_goal
    if n_drop > 0:
        drop = set(layers_to_drop(model, n_drop, importance, batches))
        keep_pos = [p for p in range(len(record.kept_layers)) if p not in drop]
        new = record.model_copy(update={
            "kept_layers": [record.kept_layers[p] for p in keep_pos],
            "kept_heads": [record.kept_heads[p] for p in keep_pos],
            "kept_ffn": [record.kept_ffn[p] for p in keep_pos]})
        record = apply_keep(model, record, new)

    # 2) heads and FFN neurons, ranked on the model that remains
    head_goal = _interpolate(record.num_heads, targets.heads_per_layer, fraction)
    ffn_goal = _interpolate(record.intermediate_size, targets.ffn_per_layer, fraction)
    needs_heads = any(len(h) > head_goal for h in record.kept_heads)
    needs_ffn = any(len(f) > ffn_goal for f in record.kept_ffn)
    if needs_heads or needs_ffn:
        head_s, ffn_s = head_ffn_scores(model, importance, batches)
        if config.allocation == "global" and importance != "weight_norm":
            floor_h = max(1, math.ceil(MIN_KEEP_FRACTION * record.num_heads))
            floor_f = max(1, math.ceil(MIN_KEEP_FRACTION * record.intermediate_size))
            kept_heads = _top_global(record.kept_heads, head_s, head_goal * len(record.kept_heads), floor_h)
            kept_ffn = _top_global(record.kept_ffn, ffn_s, ffn_goal * len(record.kept_ffn), floor_f)
        else:
            kept_heads = [_top(old, sc, head_goal) for old, sc in zip(record.kept_heads, head_s)]
            kept_ffn = [_top(old, sc, ffn_goal) for old, sc in zip(record.kept_ffn, ffn_s)]
        record = apply_keep(model, record, record.model_copy(update={"kept_heads": kept_heads,
                                                                      "kept_ffn": kept_ffn}))
    if log:
        log(f"structured_prune ({importance}, {fraction:.0%} of the way): {record.summary()}")
    cut = n_drop > 0 or needs_heads or needs_ffn
    refit = bool(cut and teacher is not None and reconstruct and importance != "weight_norm")
    if refit:
        from .prune_reconstruct import reconstruct_ffn

        if log:
            log(f"structured_prune: refitting FFN down projections to the unpruned model on "
                f"{sum(len(next(iter(b.values()))) for b in reconstruct)} inputs")
        reconstruct_ffn(model, teacher, record.kept_layers, reconstruct, log=log)
    step = {"config": config.model_dump(), "fraction": fraction, "importance": importance,
            "reconstructed": refit, "result": record.summary()}
    record = record.model_copy(update={"steps": [*record.steps, step]})
    return record


def _top(original_idx: list[int], scores: torch.Tensor, k: int) -> list[int]:
    """The k highest-scoring entries, as sorted original indices (ties: lower index first, deterministic)."""
    if len(original_idx) <= k:
        return list(original_idx)
    order = sorted(range(len(original_idx)), key=lambda j: (-float(scores[j]), j))
    return sorted(original_idx[j] for j in order[:k])


def _top_global(kept: list[list[int]], scores: list[torch.Tensor], total: int, floor: int) -> list[list[int]]:
    """Keep `total` entries over all layers by one ranking (data-driven scores are in the same units everywhere:
    the embedding's sensitivity), each layer keeping at least `floor` and never more than it has."""
    take = [min(floor, len(k)) for k in kept]
    rest = sorted(((-float(sc[j]), li, j) for li, sc in enumerate(scores)
                   for j in sorted(range(len(kept[li])), key=lambda j: (-float(sc[j]), j))[take[li]:]))
    for _, li, _ in rest[:max(total - sum(take), 0)]:
        take[li] += 1
    return [_top(k, sc, n) for k, sc, n in zip(kept, scores, take)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def encoder_shape(model: nn.Module) -> dict:
    """Per layer (heads, FFN width): what a person checks after pruning."""
    layout = layout_of(model)
    layers = layout.layers(base_model(model))
    return {"layers": len(layers),
            "heads": [layout.num_heads(l) for l in layers],
            "ffn": [layout.ffn_width(l) for l in layers]}


def increment_shares(increments: int, final_share: float | None) -> list[float]:
    """Share of the recovery budget after each increment: the last one (the final architecture) gets
    `final_share`, the others split the rest evenly; None: all equal."""
    if increments == 1:
        return [1.0]
    if final_share is None:
        return [1 / increments] * increments
    return [(1 - final_share) / (increments - 1)] * (increments - 1) + [final_share]


def prune_gradually(model: nn.Module, teacher: nn.Module, config: StructuredPruneConfig, *,
                    calibration: Sequence[Batch] | None,
                    training: Callable[[int], Iterable[Batch]] | Sequence[Batch],
                    record: PruningRecord | None = None, reconstruct: Sequence[Batch] | None = None,
                    keep_zeros: bool = False,
                    progress: Progress | None = None,
                    log: Callable[[str], None] | None = None) -> tuple[PruningRecord, list[DistillResult]]:
    """Prune `model` in place in `config.increments` steps, distilling it towards `teacher` (never modified) with
    `config.recovery` after each. `keep_zeros`: re-apply the sparsity pattern the model has during recovery."""
    from .sparsity import sparsity_masks

    recovery = config.recovery
    if recovery is None:
        raise InputError("structured_prune.recovery is required for gradual pruning")
    k_total = config.increments
    shares = increment_shares(k_total, config.final_recovery_share)
    results: list[DistillResult] = []
    done = 0.0
    for k in range(1, k_total + 1):
        record = structured_prune(model, config, batches=calibration, record=record, fraction=k / k_total,
                                  teacher=teacher, reconstruct=reconstruct, log=log)
        steps = round(recovery.max_steps * (done + shares[k - 1])) - round(recovery.max_steps * done)
        done += shares[k - 1]
        seconds = recovery.max_seconds * shares[k - 1] if recovery.max_seconds else None
        result = distill(model, teacher, training, recovery, layer_map=record.kept_layers,
                         masks=sparsity_masks(model) if keep_zeros else None, progress=progress, max_steps=steps,
                         max_seconds=seconds)
        results.append(result)
        if log:
            log(f"gradual {k}/{k_total}: {result.summary()}")
    assert record is not None
    return record, results


@register(StructuredPruneConfig)
def apply(config: StructuredPruneConfig, state: BuildState) -> BuildState:
    """Pass entry: prune a copy of state.model (already pruned: further, from `state.pruning`); the record goes
    into `state.pruning`. With increments > 1 the copy is also recovered towards state.teacher between steps."""
    import copy

    from ._inputs import calibration_batches, training_stream
    from .sparsity import sparsity_masks

    model = copy.deepcopy(state.model)
    before = count_parameters(model)
    data_driven = config.importance != "weight_norm"
    batches = calibration_batches(state, config.calibration_samples) if data_driven else None
    # A sparsified model is not refitted: a dense least-squares solve would fill in the zeros sparsity made.
    refit = data_driven and config.reconstruct_samples > 0 and state.teacher is not None \
        and state.sparsity_masks is None
    reconstruct = calibration_batches(state, config.reconstruct_samples, batch_size=64, recovery=True) \
        if refit else None
    lines: list[str] = []
    if config.increments > 1:
        recovery = config.recovery
        assert recovery is not None                       # the config validates it
        if state.teacher is None:
            raise InputError("gradual pruning distils between increments and needs the uncompressed teacher "
                             "(BuildState.teacher is None)")
        split = config.increments
        progress = line_progress(state, max(recovery.max_steps // split, 1),
                                 recovery.max_seconds / split if recovery.max_seconds else None)
        record, results = prune_gradually(
            model, state.teacher, config, calibration=batches, record=state.pruning,
            training=training_stream(state, recovery.batch_size, recovery.max_length, recovery.seed),
            reconstruct=reconstruct, keep_zeros=state.sparsity_masks is not None, progress=progress, log=lines.append)
        total = DistillResult(sum(r.steps for r in results), sum(r.seconds for r in results), results[-1].stopped_by,
                              results[0].first_loss, results[-1].last_loss)
        lines.append(f"gradual pruning in {config.increments} increments: {record.summary()}")
        lines.append(total.summary())
    else:
        record = structured_prune(model, config, batches=batches, record=state.pruning, teacher=state.teacher,
                                  reconstruct=reconstruct, log=lines.append)
    model.eval()
    lines.append(f"structured_prune: parameters {before:,} → {count_parameters(model):,}")
    for line in lines:
        state = state.note(line)
    masks = sparsity_masks(model) if state.sparsity_masks is not None else None   # the cut renamed/reshaped them
    return state.evolve(model=model, pruning=record, sparsity_masks=masks)
