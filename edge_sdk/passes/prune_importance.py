"""Which heads, FFN neurons and layers matter least? (Importance scores for structured pruning.)

Three scores, all per CURRENT layer of the model (so they also work on an already pruned model):

* `weight_norm` — no data. Head h: ‖W_v,h‖·‖W_o[:,h]‖ (the scale of what the head writes into the residual
  stream); FFN neuron i: ‖W_up[i,:]‖·‖W_down[:,i]‖. Cheap and blind: a head with large weights can still be
  redundant.
* `fisher` — label-free, data-driven. Every head and neuron gets a multiplicative gate m (=1) on its output.
  Removing it moves the sentence embedding e by ≈ −J·(1−m), so the distillation loss ‖e(m) − e(1)‖² to the
  unpruned model has Gauss-Newton diagonal ‖J[:,h]‖² — that is the score. It is estimated without labels with
  Hutchinson probes: for a random Gaussian r, E[(∂(rᵀe)/∂m_h)²] = ‖J[:,h]‖². (The distillation loss itself has zero
  gradient at m = 1, which is why the plain gradient is useless here.) e is the L2-normalised, mask-mean-pooled
  last hidden state — what the quality gate compares.
* `activation` — data-driven, no gradients: head h's mean contribution norm ‖x_h W_o[:,h]ᵀ‖ over tokens;
  neuron i: mean|a_i|·‖W_down[:,i]‖ (Wanda-style).

Layers: with data, the layer whose removal changes the calibration embeddings least (measured: cosine to the
current model) is dropped, greedily, one at a time. Without data (`weight_norm`), the documented rule "every other
layer from the top, keeping the top layer" (L−2, L−4, …; Sajjad et al., "Poor Man's BERT", found top layers the
most expendable) is used.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import Layout, base_model
from .prune_surgery import layout_of

Batch = dict[str, torch.Tensor]


def pooled_embedding(last_hidden_state: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mask-mean-pooled, L2-normalised embedding (all tokens when there is no attention mask, e.g. ViT)."""
    mask = batch.get("attention_mask")
    if mask is None:
        pooled = last_hidden_state.mean(dim=1)
    else:
        m = mask.unsqueeze(-1).to(last_hidden_state.dtype)
        pooled = (last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, dim=-1)


def split_samples(batches: Iterable[Batch]) -> Iterator[Batch]:
    """One sample at a time, padding trimmed: per-sample gradients keep the Fisher estimate free of cross terms."""
    for batch in batches:
        n = next(iter(batch.values())).shape[0]
        for i in range(n):
            one = {k: v[i:i + 1] for k, v in batch.items()}
            mask = one.get("attention_mask")
            if mask is not None and mask.dim() == 2:
                keep = mask[0].bool()
                one = {k: (v[:, keep] if v.dim() == 2 and v.shape[1] == mask.shape[1] else v)
                       for k, v in one.items()}
            yield one


@contextmanager
def _frozen(model: nn.Module):
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


@contextmanager
def _gates(layout: Layout, layers: Sequence[nn.Module], head_gates, ffn_gates, observe=None):
    """Multiply each head's / neuron's output by its gate (forward pre-hooks on the o-proj and FFN down-proj)."""
    handles = []
    for li, layer in enumerate(layers):
        d = layout.head_dim(layer)
        o = layout.linear(layout.out_proj(layer))
        down = layout.linear(layout.ffn(layer)[1])

        def head_hook(mod, args, li=li, d=d):
            x = args[0]
            if observe is not None:
                observe("head", li, mod, x)
            if head_gates is None:
                return None
            g = head_gates[li].repeat_interleave(d, dim=-1)           # (H·d,) or per sample (B, H·d)
            return (x * (g[:, None, :] if g.dim() == 2 else g),) + tuple(args[1:])

        def ffn_hook(mod, args, li=li):
            x = args[0]
            if observe is not None:
                observe("ffn", li, mod, x)
            if ffn_gates is None:
                return None
            g = ffn_gates[li]
            return (x * (g[:, None, :] if g.dim() == 2 else g),) + tuple(args[1:])

        handles.append(o.register_forward_pre_hook(head_hook))
        handles.append(down.register_forward_pre_hook(ffn_hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _dims(layout: Layout, layers) -> tuple[list[int], list[int]]:
    heads = [layout.num_heads(layer) for layer in layers]
    ffn = [layout.linear(layout.ffn(layer)[0]).out_features for layer in layers]
    return heads, ffn


def weight_norm_scores(model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    layout = layout_of(model)
    head_s, ffn_s = [], []
    with torch.no_grad():
        for layer in layout.layers(base_model(model)):
            d = layout.head_dim(layer)
            h = layout.num_heads(layer)
            v = layout.linear(layout.qkv(layer)[2]).weight.view(h, d, -1)
            o = layout.linear(layout.out_proj(layer)).weight.view(-1, h, d)
            head_s.append(v.pow(2).sum((1, 2)).sqrt() * o.pow(2).sum((0, 2)).sqrt())
            up = layout.linear(layout.ffn(layer)[0]).weight
            down = layout.linear(layout.ffn(layer)[1]).weight
            ffn_s.append(up.norm(dim=1) * down.norm(dim=0))
    return head_s, ffn_s


def fisher_scores(model: nn.Module, batches: Iterable[Batch], *, probes: int = 2,
                  seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Gates are per sample (B × H, B × I), so one batched backward yields every sample's own gradient and the
    squared sum has no cross-sample terms; padding cannot leak (attention mask + masked pooling)."""
    layout = layout_of(model)
    layers = list(layout.layers(base_model(model)))
    n_heads, n_ffn = _dims(layout, layers)
    head_s = [torch.zeros(n) for n in n_heads]
    ffn_s = [torch.zeros(n) for n in n_ffn]
    gen = torch.Generator().manual_seed(seed)
    with _frozen(model):
        for batch in batches:
            b = next(iter(batch.values())).shape[0]
            head_g = [torch.ones(b, n, requires_grad=True) for n in n_heads]
            ffn_g = [torch.ones(b, n, requires_grad=True) for n in n_ffn]
            with _gates(layout, layers, head_g, ffn_g):
                e = pooled_embedding(model(**batch).last_hidden_state, batch)
            for p in range(probes):
                r = torch.randn(e.shape, generator=gen)
                grads = torch.autograd.grad((e * r).sum(), head_g + ffn_g, retain_graph=p < probes - 1)
                for acc, g in zip(head_s + ffn_s, grads):
                    acc += g.detach().pow(2).sum(0)
    return head_s, ffn_s


def activation_scores(model: nn.Module, batches: Iterable[Batch]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    layout = layout_of(model)
    layers = list(layout.layers(base_model(model)))
    n_heads, n_ffn = _dims(layout, layers)
    head_s = [torch.zeros(n) for n in n_heads]
    ffn_s = [torch.zeros(n) for n in n_ffn]

    def observe(kind, li, mod, x):
        x = x.reshape(-1, x.shape[-1])                      # tokens × features
        if kind == "head":
            h = n_heads[li]
            w = mod.weight.view(mod.out_features, h, -1)   # D × H × d
            contrib = torch.einsum("thd,Dhd->thD", x.view(x.shape[0], h, -1), w)
            head_s[li] += contrib.norm(dim=-1).mean(0)
        else:
            ffn_s[li] += x.abs().mean(0) * mod.weight.norm(dim=0)

    with _frozen(model), torch.no_grad(), _gates(layout, layers, None, None, observe=observe):
        for sample in split_samples(batches):
            model(**sample)
    return head_s, ffn_s


def head_ffn_scores(model: nn.Module, importance: str,
                    batches: Sequence[Batch] | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per current layer: a score per head and per FFN neuron (higher = more important)."""
    if importance == "weight_norm" or not batches:
        return weight_norm_scores(model)
    if importance == "fisher":
        return fisher_scores(model, batches)
    if importance == "activation":
        return activation_scores(model, batches)
    raise ValueError(f"unknown importance {importance!r}")


def rule_layers_to_drop(num_layers: int, n_drop: int) -> list[int]:
    """Every other layer from the top keeping the top one (L−2, L−4, …), then the rest from the top down."""
    order = list(range(num_layers - 2, -1, -2)) + list(range(num_layers - 1, -1, -2))
    return sorted(order[:n_drop])


def _embeddings(model: nn.Module, batches: Sequence[Batch]) -> list[torch.Tensor]:
    return [pooled_embedding(model(**b).last_hidden_state, b) for b in batches]


def measured_layers_to_drop(model: nn.Module, n_drop: int, batches: Sequence[Batch]) -> list[int]:
    """Greedy: repeatedly remove the layer whose absence keeps the embeddings closest (cosine) to the model's."""
    layout = layout_of(model)
    base = base_model(model)
    original = layout.layers(base)
    kept = list(range(len(original)))
    with _frozen(model), torch.no_grad():
        reference = _embeddings(model, batches)
        try:
            for _ in range(n_drop):
                best, best_cos = None, -2.0
                for cand in kept:
                    layout.set_layers(base, nn.ModuleList([original[i] for i in kept if i != cand]))
                    cos = torch.cat([(a * b).sum(-1) for a, b in zip(_embeddings(model, batches), reference)])
                    if cos.mean().item() > best_cos:
                        best, best_cos = cand, cos.mean().item()
                kept.remove(best)
        finally:
            layout.set_layers(base, original)
    return sorted(set(range(len(original))) - set(kept))


def layers_to_drop(model: nn.Module, n_drop: int, importance: str, batches: Sequence[Batch] | None) -> list[int]:
    """Current-layer indices to remove."""
    if n_drop <= 0:
        return []
    if importance == "weight_norm" or not batches:
        return rule_layers_to_drop(len(layout_of(model).layers(base_model(model))), n_drop)
    return measured_layers_to_drop(model, n_drop, batches)
