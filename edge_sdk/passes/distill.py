"""Label-free recovery: distil a pruned/sparsified student towards the unpruned teacher on unlabeled inputs.

Why these losses: the product is an embedding, so the student should reproduce the teacher's representation, not a
task label. Three terms (weights in DistillConfig):
  * hidden   — MSE between every student layer's output and its teacher layer (layer map = the kept original
               layer indices when layers were dropped), over real tokens only, each normalised by the teacher
               layer's mean square so that layers with large activations do not drown the others (TinyBERT-style);
  * embedding— 1 − cosine of the mask-mean-pooled sentence embeddings (what the quality gate measures);
  * attention— MiniLM-v2 self-attention relations (Q·Qᵀ, K·Kᵀ, V·Vᵀ softmaxed, KL to the teacher) on every layer
               or the last, with relation heads that split both q/k/v widths, so pruned head counts still fit.
AdamW on everything but the embeddings (pruning never touches them; freezing halves the optimizer's work), gradient
clipping, linear warm-up then cosine decay over the budget (`lr_factor`); the budget is `max_steps` and/or
`max_seconds`, whichever ends first (progress is measured against both, so the schedule fits a time budget too).
Dropout stays off (student in eval mode): on a short budget the student should copy the teacher, not regularise.

Measured on all-MiniLM-L6-v2, FFN −50 %, 600 steps of batch 32 on the shipped corpus (held-out cosine): lr 2e-4
0.929, 4e-4 0.934, 1e-3 0.930; embedding weight 4× 0.908 at 300 steps vs 0.917; attention relations on all layers
0.935 (no gain without head pruning). On WordNet-like held-out text the same student scores 0.970: the domain of
the recovery text matters as much as the steps — give the build your own unlabeled text (--calibration-data).

The pass recovers exactly the model it receives (pruned, sparsified, or both; the layer map comes from
`state.pruning`, the zeros to keep from `state.sparsity_masks`). Gradual pruning calls `distill` between its
increments from the prune pass (prune.py); this module imports nothing from pruning.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..schemas.passes import DistillConfig
from ..arch import base_model, find_layout
from .prune_importance import Batch, pooled_embedding
from .registry import register
from .state import BuildState

Progress = Callable[[int, int | None, dict], None]


@dataclass
class DistillResult:
    steps: int
    seconds: float
    stopped_by: str                         # "max_steps" | "max_seconds" | "data"
    first_loss: float | None
    last_loss: float | None                 # mean of the last 10 steps
    losses: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.steps:
            return "distill: 0 steps"
        return (f"distill: {self.steps} steps in {self.seconds:.0f} s (stopped by {self.stopped_by}), "
                f"loss {self.first_loss:.4f} → {self.last_loss:.4f}")


def _layout(model: nn.Module):
    layout = find_layout(model)
    if layout is None or layout.kind == "decoder":
        raise InputError(f"distill supports BERT-family encoders and ViT; got {type(model).__name__}")
    return layout


def default_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Student layer i ↔ teacher layer: identity when counts match, else uniform (the top maps to the top)."""
    if student_layers == teacher_layers:
        return list(range(student_layers))
    return [round((i + 1) * teacher_layers / student_layers) - 1 for i in range(student_layers)]


def _token_mask(batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
    mask = batch.get("attention_mask")
    if mask is None:
        return torch.ones(hidden.shape[:2], dtype=hidden.dtype)
    return mask.to(hidden.dtype)


def hidden_loss(student_hs: Sequence[torch.Tensor], teacher_hs: Sequence[torch.Tensor], layer_map: Sequence[int],
                mask: torch.Tensor) -> torch.Tensor:
    """Mean over mapped layers of masked MSE / teacher mean square (hidden_states[0] = embeddings, skipped)."""
    m = mask.unsqueeze(-1)
    n = m.sum() * student_hs[1].shape[-1]
    total = 0.0
    for i, t_i in enumerate(layer_map):
        s, t = student_hs[i + 1], teacher_hs[t_i + 1]
        scale = (t.pow(2) * m).sum() / n
        total = total + ((s - t).pow(2) * m).sum() / n / scale.clamp(min=1e-6)
    return total / len(layer_map)


class _QKVCapture:
    """Forward hooks that keep the q/k/v projections of some layers (for attention-relation distillation)."""

    def __init__(self, model: nn.Module, layer_indices: int | Sequence[int]):
        layout = _layout(model)
        layers = layout.layers(base_model(model))
        self.indices = [layer_indices] if isinstance(layer_indices, int) else list(layer_indices)
        self.heads = layout.num_heads(layers[self.indices[-1]])
        self.outs: dict[int, list[torch.Tensor]] = {i: [None, None, None] for i in self.indices}  # type: ignore[misc]
        self.handles = [layout.linear(ref).register_forward_hook(self._hook(i, j))
                        for i in self.indices for j, ref in enumerate(layout.qkv(layers[i]))]

    @property
    def out(self) -> list[torch.Tensor]:
        """q, k, v of the last captured layer."""
        return self.outs[self.indices[-1]]

    def _hook(self, i, j):
        def hook(mod, args, out):
            self.outs[i][j] = out
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def relation_heads(student_width: int, teacher_width: int, teacher_heads: int) -> int:
    """MiniLM-v2 relation heads: the most (≤ the teacher's heads) that split both q/k/v widths evenly, so a student
    with pruned heads (e.g. 9 × 32 = 288 wide vs 12 × 32) still gets 12 relation heads of 24 and 32 dims."""
    return max(r for r in range(1, teacher_heads + 1) if student_width % r == 0 and teacher_width % r == 0)


def _relations(x: torch.Tensor, heads: int, key_mask: torch.Tensor) -> torch.Tensor:
    b, t, width = x.shape
    xr = x.view(b, t, heads, width // heads).transpose(1, 2)             # b × R × t × d
    scores = xr @ xr.transpose(-1, -2) / math.sqrt(width // heads)
    scores = scores.masked_fill(key_mask[:, None, None, :] == 0, float("-inf"))
    return F.log_softmax(scores, dim=-1)


def relation_kl(s_qkv: Sequence[torch.Tensor], t_qkv: Sequence[torch.Tensor], heads: int,
                mask: torch.Tensor) -> torch.Tensor:
    """Mean over Q-Q, K-K, V-V of KL(teacher relation ‖ student relation), averaged over real query tokens."""
    rows = mask.bool()
    total = 0.0
    for s, t in zip(s_qkv, t_qkv):
        r = relation_heads(s.shape[-1], t.shape[-1], heads)
        ls, lt = _relations(s, r, mask), _relations(t, r, mask)
        kl = (lt.exp() * (lt - ls)).nan_to_num(0.0, posinf=0.0, neginf=0.0).sum(-1)     # b × R × t
        total = total + kl.transpose(1, 2)[rows].mean()
    return total / 3


def attention_relation_loss(s_cap: _QKVCapture, t_cap: _QKVCapture, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the captured layer pairs (student's i-th captured layer ↔ teacher's i-th)."""
    pairs = list(zip(s_cap.indices, t_cap.indices))
    return sum(relation_kl(s_cap.outs[si], t_cap.outs[ti], t_cap.heads, mask) for si, ti in pairs) / len(pairs)


def distillation_loss(student: nn.Module, teacher: nn.Module, batch: Batch, config: DistillConfig,
                      layer_map: Sequence[int], s_cap: "_QKVCapture | None" = None,
                      t_cap: "_QKVCapture | None" = None) -> torch.Tensor:
    """The weighted training loss on one batch (teacher without gradients)."""
    with torch.no_grad():
        t_out = teacher(**batch, output_hidden_states=True)
    s_out = student(**batch, output_hidden_states=True)
    mask = _token_mask(batch, s_out.last_hidden_state)
    loss = torch.zeros(())
    if config.hidden_loss_weight:
        loss = loss + config.hidden_loss_weight * hidden_loss(s_out.hidden_states, t_out.hidden_states, layer_map,
                                                              mask)
    if config.embedding_loss_weight:
        e_s = pooled_embedding(s_out.last_hidden_state, batch)
        e_t = pooled_embedding(t_out.last_hidden_state, batch)
        loss = loss + config.embedding_loss_weight * (1 - (e_s * e_t).sum(-1)).mean()
    if s_cap is not None and t_cap is not None and config.attention_loss_weight:
        loss = loss + config.attention_loss_weight * attention_relation_loss(s_cap, t_cap, mask)
    return loss


def lr_factor(done: float, warmup: float, schedule: str = "cosine", floor: float = 0.0) -> float:
    """Learning-rate multiplier at `done` ∈ [0, 1] of the budget: linear warm-up over the first `warmup`, then
    cosine or linear decay from 1 to `floor` (constant: stays 1). Warm-up keeps AdamW's first, badly scaled
    updates from wrecking a freshly cut model; the decay lets the last steps settle instead of bouncing."""
    done = min(max(done, 0.0), 1.0)
    if warmup > 0 and done < warmup:
        return done / warmup
    if schedule == "constant":
        return 1.0
    p = (done - warmup) / (1 - warmup) if warmup < 1 else 1.0
    shape = 0.5 * (1 + math.cos(math.pi * p)) if schedule == "cosine" else 1 - p
    return floor + (1 - floor) * shape


def _infinite(batches: Callable[[int], Iterable[Batch]] | Sequence[Batch]) -> Iterator[Batch]:
    epoch = 0
    while True:
        source = batches(epoch) if callable(batches) else batches
        empty = True
        for b in source:
            empty = False
            yield b
        if empty:
            return
        epoch += 1


def distill(student: nn.Module, teacher: nn.Module, batches: Callable[[int], Iterable[Batch]] | Sequence[Batch],
            config: DistillConfig, *, layer_map: Sequence[int] | None = None, masks: dict | None = None,
            progress: Progress | None = None, max_steps: int | None = None,
            max_seconds: float | None = None) -> DistillResult:
    """Train `student` in place towards `teacher` (never modified). `batches`: a list, or epoch → iterable.

    `max_steps` / `max_seconds` override the config's budget (a gradual schedule splits it); `masks` (from
    sparsity.sparsity_masks) are re-applied after every step so sparsity survives recovery.
    """
    max_steps = config.max_steps if max_steps is None else max_steps
    max_seconds = config.max_seconds if max_seconds is None else max_seconds
    s_layers = len(_layout(student).layers(base_model(student)))
    t_layers = len(_layout(teacher).layers(base_model(teacher)))
    layer_map = list(layer_map) if layer_map is not None else default_layer_map(s_layers, t_layers)
    if len(layer_map) != s_layers or max(layer_map, default=0) >= t_layers:
        raise InputError(f"distill: layer map {layer_map} does not fit a {s_layers}-layer student and "
                         f"{t_layers}-layer teacher")
    from .sparsity import reapply_masks

    teacher_flags = [(p, p.requires_grad) for p in teacher.parameters()]
    teacher_was_training = teacher.training
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student.eval()                                         # dropout off; gradients still flow
    all_params = list(student.parameters())
    flags = [p.requires_grad for p in all_params]
    frozen = set() if config.train_embeddings else {id(p) for p in _layout(student).embeddings(
        base_model(student)).parameters()}
    params = [p for p in all_params if id(p) not in frozen]
    for p in all_params:
        p.requires_grad_(id(p) not in frozen)
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    s_cap = t_cap = None
    if config.attention_loss_weight > 0:
        s_idx = list(range(s_layers)) if config.attention_layers == "all" else [s_layers - 1]
        s_cap = _QKVCapture(student, s_idx)
        t_cap = _QKVCapture(teacher, [layer_map[i] for i in s_idx])
    losses: list[float] = []
    start = time.monotonic()
    stopped_by = "max_steps"
    stream = _infinite(batches)
    try:
        step = 0
        while step < max_steps:
            elapsed = time.monotonic() - start
            if max_seconds is not None and elapsed >= max_seconds:
                stopped_by = "max_seconds"
                break
            batch = next(stream, None)
            if batch is None:
                stopped_by = "data"
                break
            done = max((step + 1) / max_steps, elapsed / max_seconds if max_seconds else 0.0)
            factor = lr_factor(done, config.warmup_fraction, config.lr_schedule, config.min_lr_fraction)
            for g in opt.param_groups:
                g["lr"] = config.learning_rate * factor
            loss = distillation_loss(student, teacher, batch, config, layer_map, s_cap, t_cap)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if masks:
                reapply_masks(student, masks)
            losses.append(loss.item())
            step += 1
            if progress is not None:
                progress(step, max_steps, {"loss": losses[-1], "seconds": time.monotonic() - start,
                                           "max_seconds": max_seconds, "lr": config.learning_rate * factor})
    finally:
        for cap in (s_cap, t_cap):
            if cap is not None:
                cap.remove()
        for p, f in zip(all_params, flags):
            p.requires_grad_(f)
        student.eval()
        for p, f in teacher_flags:                       # leave the teacher exactly as it was given
            p.requires_grad_(f)
        teacher.train(teacher_was_training)
    tail = losses[-10:]
    return DistillResult(len(losses), time.monotonic() - start, stopped_by, losses[0] if losses else None,
                         sum(tail) / len(tail) if tail else None, losses)


def line_progress(state: BuildState, budget_steps: int, budget_seconds: float | None) -> Progress:
    """Turn step callbacks into ~10 log lines per run (BuildState.progress takes lines)."""
    last = {"decile": -1, "step": 0}

    def progress(step: int, total: int | None, info: dict) -> None:
        if step < last["step"]:                       # a new increment of a gradual schedule
            last["decile"] = -1
        last["step"] = step
        done = max(step / max(budget_steps, 1), info["seconds"] / budget_seconds if budget_seconds else 0.0)
        decile = int(min(done, 1.0) * 10)
        if decile > last["decile"] and state.progress is not None:
            last["decile"] = decile
            of = "" if budget_seconds and budget_steps >= 10**6 else f"/{budget_steps}"   # a time budget (plans)
            state.progress(f"distill: step {step}{of}, {info['seconds']:.0f}"
                           f"{f'/{budget_seconds:.0f}' if budget_seconds else ''} s, loss {info['loss']:.4f}")
    return progress


@register(DistillConfig)
def apply(config: DistillConfig, state: BuildState) -> BuildState:
    """Pass entry: recover a copy of state.model towards state.teacher (layer map from state.pruning, sparsity
    pattern kept from state.sparsity_masks)."""
    import copy

    from ._inputs import training_stream

    if state.teacher is None:
        raise InputError("distill needs the uncompressed teacher model (BuildState.teacher is None)")
    training = training_stream(state, config.batch_size, config.max_length, config.seed)
    record = state.pruning
    progress = line_progress(state, max(config.max_steps, 1), config.max_seconds)
    student = copy.deepcopy(state.model)
    result = distill(student, state.teacher, training, config,
                     layer_map=record.kept_layers if record is not None else None, masks=state.sparsity_masks,
                     progress=progress)
    state = state.note(result.summary())
    return state.evolve(model=student.eval())
