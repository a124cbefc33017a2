"""After FFN neurons are cut, which down-projection weights best reproduce the unpruned model? (Least-squares
weight reconstruction, before any distillation.)

Cutting neurons leaves each layer's down projection as W_down[:, kept]: weights trained for a sum over all neurons.
The kept neurons' activations H are known on calibration inputs, so the best linear map from them back to what the
teacher's layer produced is one weighted least-squares solve per layer (Kwon et al., "A Fast Post-Training Pruning
Framework for Transformers", NeurIPS 2022, call this mask tuning; FLAP and SlimGPT do the same for LLMs). Layers are
solved in order on the student as already repaired below them, and two choices decide whether it helps (measured on
all-MiniLM-L6-v2, FFN −50 %, global Fisher allocation, 2,000 corpus texts, held-out everyday-sentence cosine to the
unpruned model; one-shot 0.831):

* target = teacher FFN output + teacher residual − student residual, T = F_t + R_t − R_s: each layer also absorbs
  the drift the layers under it left in the residual stream (0.901; the local target F_t(x_s) reached 0.874);
* token weights 1 / var(R_s + T): the LayerNorm after the sum divides every token by its own spread, so the error
  that matters is relative. Unweighted least squares spends the fit on a few large-norm tokens and made the embedding
  WORSE (0.817).

What it does NOT do: help distillation. Distilling from the refitted model on the shipped corpus ends lower than
distilling from the plain cut (held-out 0.914 vs 0.921 after 192 steps, 0.936 vs 0.946 after 960; in-domain 0.959
vs 0.963 after 192; lr 1e-4 instead of 4e-4 changed nothing). On the everyday recovery text it starts at 0.925 and
still ends lower after 600 steps: 0.951 at lr 2e-4, 0.947 at 1e-4, against 0.958 from the plain cut; the loss rises
over the first 120 steps, as the optimizer leaves the solve. The solve fits the calibration text's token
statistics, which the embedding on other text does not share. So it is for pruning without recovery, and off by
default (`reconstruct_samples`).

Ridge 1e-3 × mean diagonal of the Gram matrix keeps rarely active neurons from taking huge weights. Only sums over
tokens are kept ((k+1)² and (k+1)×d per layer), so memory does not grow with the data.

Written here because no maintained library does this for transformers encoders: the NeurIPS code is a research
snapshot for BERT-base with its own mask search, and LLM pruning toolkits (llm-pruner, FLAP) target decoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..arch import base_model
from .prune_importance import Batch
from .prune_surgery import layout_of

#: Ridge strength relative to the mean diagonal of the weighted Gram matrix.
RIDGE = 1e-3
#: A layer is refitted only with at least this many tokens per kept neuron (fewer: the solve fits the calibration
#: inputs, not the layer; e.g. a ViT-B/16 with 16 images has ~1 token per neuron).
MIN_TOKENS_PER_WEIGHT = 4


@dataclass(frozen=True)
class LayerFit:
    layer: int
    tokens: int
    neurons: int
    error_before: float     # weighted relative squared error of the layer's FFN output vs the target
    error_after: float


class _Stop(Exception):
    """Raised from a hook once the layer being repaired has been seen: the layers above it need not run."""


def _tokens(t: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Rows of real tokens (padding dropped when there is an attention mask), as (tokens, features)."""
    mask = batch.get("attention_mask")
    if mask is not None and t.dim() == 3 and mask.shape == t.shape[:2]:
        return t[mask.bool()]
    return t.reshape(-1, t.shape[-1])


def _capture(model: nn.Module, layer_index: int, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(residual stream into the FFN, input of the down projection, its output) of one layer, real tokens only;
    the forward pass stops there."""
    layout = layout_of(model)
    layer = layout.layers(base_model(model))[layer_index]
    owner, name = layout.ffn(layer)[1]
    seen: dict[str, torch.Tensor] = {}

    def residual_hook(_m, args):
        seen["r"] = args[0]

    def down_hook(_m, args, out):
        seen["h"], seen["f"] = args[0], out
        raise _Stop

    handles = [layout.ffn_residual(layer).register_forward_pre_hook(residual_hook),
               getattr(owner, name).register_forward_hook(down_hook)]
    try:
        model(**batch)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    if "f" not in seen:
        raise RuntimeError(f"layer {layer_index}: the FFN down projection did not run")
    return tuple(_tokens(seen[k], batch) for k in ("r", "h", "f"))   # type: ignore[return-value]


@torch.no_grad()
def reconstruct_ffn(student: nn.Module, teacher: nn.Module, layer_map: Sequence[int], batches: Sequence[Batch], *,
                    ridge: float = RIDGE, log: Callable[[str], None] | None = None) -> list[LayerFit]:
    """Refit every student layer's FFN down projection (weight and bias) in place, bottom to top; `layer_map[i]` is
    the teacher layer that student layer i stands for. Returns the per-layer fit errors."""
    layout = layout_of(student)
    layers = layout.layers(base_model(student))
    if len(layer_map) != len(layers):
        raise ValueError(f"layer_map has {len(layer_map)} entries for {len(layers)} student layers")
    was_training = student.training, teacher.training
    student.eval(), teacher.eval()
    fits: list[LayerFit] = []
    try:
        for i, layer in enumerate(layers):
            owner, name = layout.ffn(layer)[1]
            down: nn.Linear = getattr(owner, name)
            k = down.in_features
            bias = down.bias is not None
            n = k + bias
            gram = torch.zeros(n, n, dtype=torch.float64)
            cross = torch.zeros(n, down.out_features, dtype=torch.float64)
            target_sq = 0.0
            old = (torch.cat([down.weight.T, down.bias[None]]) if bias else down.weight.T).double()
            tokens = 0
            for batch in batches:
                r_t, _, f_t = _capture(teacher, layer_map[i], batch)
                r_s, h_s, _ = _capture(student, i, batch)
                target = (f_t + r_t - r_s).double()
                weight = 1.0 / (r_s.double() + target).var(dim=1, keepdim=True).clamp_min(1e-6)
                h1 = h_s.double()
                if bias:
                    h1 = torch.cat([h1, torch.ones(len(h1), 1, dtype=torch.float64)], 1)
                gram += h1.T @ (h1 * weight)
                cross += (h1 * weight).T @ target
                target_sq += float((weight * target * target).sum())
                tokens += len(h_s)
            if tokens < MIN_TOKENS_PER_WEIGHT * n:
                if log:
                    log(f"  layer {i}: FFN {k} neurons left as cut: {tokens:,} tokens are too few to refit them "
                        f"(needs {MIN_TOKENS_PER_WEIGHT * n:,}; give more calibration data)")
                continue
            lam = ridge * float(gram.diagonal().mean())
            new = torch.linalg.solve(gram + lam * torch.eye(n, dtype=torch.float64), cross)

            def error(w: torch.Tensor) -> float:   # Σ w‖T − H₁W‖² from the sums, no second pass
                return (target_sq - 2 * float((w * cross).sum()) + float((w * (gram @ w)).sum())) / target_sq

            fit = LayerFit(i, tokens, k, error(old), error(new))
            down.weight.copy_(new[:k].T.to(down.weight.dtype))
            if bias:
                down.bias.copy_(new[k].to(down.bias.dtype))
            fits.append(fit)
            if log:
                log(f"  layer {i}: FFN {k} neurons refitted on {tokens:,} tokens, relative error "
                    f"{fit.error_before:.3f} → {fit.error_after:.3f}")
    finally:
        student.train(was_training[0]), teacher.train(was_training[1])
    return fits
