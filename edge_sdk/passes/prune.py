"""Structured pruning pass: how many heads, FFN neurons and layers go, and which ones (by importance, never first-N).

Counts come from the config against the ORIGINAL model (so a gradual schedule reaches exactly the same
architecture as one-shot): per layer `round(head_ratio·H)` heads and `round(ffn_ratio·I)` FFN neurons are removed,
and `drop_layers` whole layers. Layers go first (measured on the calibration data, or by rule), then heads and
neurons are ranked on the model that remains. The physical cut and the record live in prune_surgery.py, the scores
in prune_importance.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import InputError
from ..schemas.passes import StructuredPruneConfig
from .prune_importance import Batch, head_ffn_scores, layers_to_drop
from .prune_surgery import PruningRecord, _base, apply_keep, attach_record, layout_of, record_of
from .registry import register
from .state import BuildState


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
                     log: Callable[[str], None] | None = None) -> PruningRecord:
    """Prune `model` in place towards `config` (`fraction` of the way, for gradual schedules); returns the record.

    `record` describes what `model` already is (None: unpruned). `batches` are calibration inputs (tokenised text,
    or pixel_values for ViT); without them the data-driven importances fall back to weight norms (logged).
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
        kept_heads, kept_ffn = [], []
        for old_h, old_f, hs, fs in zip(record.kept_heads, record.kept_ffn, head_s, ffn_s):
            kept_heads.append(_top(old_h, hs, head_goal))
            kept_ffn.append(_top(old_f, fs, ffn_goal))
        record = apply_keep(model, record, record.model_copy(update={"kept_heads": kept_heads,
                                                                      "kept_ffn": kept_ffn}))
    step = {"config": config.model_dump(), "fraction": fraction, "importance": importance,
            "result": record.summary()}
    record = record.model_copy(update={"steps": [*record.steps, step]})
    if log:
        log(f"structured_prune ({importance}, {fraction:.0%} of the way): {record.summary()}")
    return record


def _top(original_idx: list[int], scores: torch.Tensor, k: int) -> list[int]:
    """The k highest-scoring entries, as sorted original indices (ties: lower index first, deterministic)."""
    if len(original_idx) <= k:
        return list(original_idx)
    order = sorted(range(len(original_idx)), key=lambda j: (-float(scores[j]), j))
    return sorted(original_idx[j] for j in order[:k])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def encoder_shape(model: nn.Module) -> dict:
    """Per layer (heads, FFN width): what a person checks after pruning."""
    layout = layout_of(model)
    layers = layout.layers(_base(model))
    return {"layers": len(layers),
            "heads": [layout.num_heads(l) for l in layers],
            "ffn": [layout.linear(layout.ffn(l)[0]).out_features for l in layers]}


@register(StructuredPruneConfig)
def apply(config: StructuredPruneConfig, state: BuildState) -> BuildState:
    """Pass entry: prune a copy of state.model; the PruningRecord travels on the model (prune_surgery.record_of)."""
    import copy

    from ._inputs import calibration_batches

    model = copy.deepcopy(state.model)
    before = count_parameters(model)
    batches = calibration_batches(state, config.calibration_samples) if config.importance != "weight_norm" else None
    lines: list[str] = []
    record = structured_prune(model, config, batches=batches, record=record_of(model), log=lines.append)
    attach_record(model, record)
    model.eval()
    lines.append(f"structured_prune: parameters {before:,} → {count_parameters(model):,}")
    for line in lines:
        state = state.note(line)
    return state.evolve(model=model)
