"""Unstructured and 2:4 magnitude sparsity, made permanent (zeros in ordinary dense weights, no masks or hooks left).

Why it exists although it does not speed up dense kernels (measured: 50 % unstructured MiniLM runs as fast as
dense): 2:4 runs ~1.5-2x faster on sparse tensor cores (Ampere and later, TensorRT / cuSPARSELt), and zeros compress
well in a bundle. It costs quality (50 % l1 unstructured, no recovery: cosine 0.76 on MiniLM), so follow it with
a DistillConfig — the student keeps its zeros only if recovery does not fill them back in; `sparsity_masks` (kept in
`BuildState.sparsity_masks`) / `reapply_masks` let distillation keep the pattern.

Tools: `torch.nn.utils.prune` (l1_unstructured per layer, global_unstructured across layers, then `prune.remove`).
For 2:4 torch DOES have a mask helper, `torch.ao.pruning.WeightNormSparsifier(sparse_block_shape=(1, 4),
zeros_per_block=2)` (keeps the 2 largest |w| of every 4 consecutive input weights); it is used here and
`squash_mask` makes it permanent. The test checks its pattern against a hand-computed top-2-of-4 reference.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.ao.pruning import WeightNormSparsifier
from torch.nn.utils import prune

from ..errors import InputError
from ..schemas.passes import UnstructuredSparsityConfig
from .registry import register
from .state import BuildState


def target_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The Linear layers inside the transformer blocks (embeddings, pooler and task heads are left dense)."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and (".layer." in f".{name}." or ".layers." in f".{name}."):
            out.append((name, mod))
    return out or [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def apply_sparsity(model: nn.Module, config: UnstructuredSparsityConfig, *,
                   log: Callable[[str], None] | None = None) -> dict:
    """Zero the smallest-magnitude weights in place; returns {'sparsity': achieved fraction, 'layers': n, ...}."""
    linears = target_linears(model)
    if not linears:
        raise InputError(f"sparsity: {type(model).__name__} has no nn.Linear layers to sparsify")
    if not 0 < config.sparsity < 1:
        raise InputError(f"sparsity.sparsity={config.sparsity}: must be in (0, 1)")
    skipped: list[str] = []
    if config.pattern == "2:4":
        if abs(config.sparsity - 0.5) > 1e-9:
            raise InputError(f"sparsity.sparsity={config.sparsity}: pattern '2:4' always removes exactly 0.5 "
                             "(2 of every 4); set sparsity to 0.5")
        eligible = [(n, m) for n, m in linears if m.in_features % 4 == 0]
        skipped = [n for n, m in linears if m.in_features % 4]
        if not eligible:
            raise InputError("sparsity.pattern='2:4': no Linear layer has an input width divisible by 4")
        sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
        sparsifier.prepare(model, [{"tensor_fqn": f"{n}.weight"} for n, _ in eligible])
        sparsifier.step()
        sparsifier.squash_mask()                     # permanent: parametrizations removed, zeros stay
        linears = eligible
    else:
        params = [(m, "weight") for _, m in linears]
        if config.scope == "global":
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=config.sparsity)
        else:
            for m, name in params:
                prune.l1_unstructured(m, name, amount=config.sparsity)
        for m, name in params:
            prune.remove(m, name)                    # permanent: weight_orig/weight_mask and the hook are gone
    zeros = sum(int((m.weight == 0).sum()) for _, m in linears)
    total = sum(m.weight.numel() for _, m in linears)
    result = {"pattern": config.pattern, "sparsity": zeros / total, "layers": len(linears), "skipped": skipped}
    if log:
        log(f"sparsity {config.pattern}: {zeros / total:.1%} zeros in {len(linears)} Linear layers"
            + (f" (skipped, width not divisible by 4: {', '.join(skipped)})" if skipped else ""))
    return result


def sparsity_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Where the zeros are now, so recovery can keep them (Linear weights with any exact zero)."""
    return {f"{n}.weight": (m.weight != 0) for n, m in target_linears(model) if bool((m.weight == 0).any())}


@torch.no_grad()
def reapply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask)


@register(UnstructuredSparsityConfig)
def apply(config: UnstructuredSparsityConfig, state: BuildState) -> BuildState:
    """Pass entry: sparsify a copy of state.model; where the zeros are goes into `state.sparsity_masks`, so a later
    distill pass keeps them."""
    import copy

    model = copy.deepcopy(state.model)
    lines: list[str] = []
    apply_sparsity(model, config, log=lines.append)
    for line in lines:
        state = state.note(line)
    return state.evolve(model=model.eval(), sparsity_masks=sparsity_masks(model))
