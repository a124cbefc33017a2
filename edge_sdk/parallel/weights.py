"""Where a rank's weights come from: the same numbers on every rank, without a broadcast, holding only its share.

- A transformers config.json (random weights): the model is built on the meta device (no memory) and each parameter
  a rank owns is drawn from a generator seeded by (seed, the parameter's name in the full model). Every rank — and
  the single-process reference — draws the same tensor for the same name, so no weight broadcast is needed, and a
  rank materialises only its stage's layers and its tensor-parallel slice (peak memory: its share plus one full
  tensor while slicing it). Biases and norm scales are random too (not transformers' zeros and ones): a shard that
  adds a bias on every tensor-parallel rank, or skips a norm, then changes the output and the comparison catches it.
- A model with trained weights (`minilm`, a Hugging Face directory): transformers loads it in full on every rank,
  then each rank keeps only its share (so the peak RSS includes the full model once; said in the run's notes).

Non-persistent buffers (rotary frequencies, BERT's position ids) are recomputed with the model's own
`_init_weights`, the path transformers itself takes when it loads onto the meta device.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass
class Skeleton:
    model: Any            # a transformers PreTrainedModel; parameters on meta when `random` is True
    random: bool          # weights drawn from the seed (config) or loaded (checkpoint)
    name: str
    std: float            # the config's initializer_range, used for random weights


def load_skeleton(source: str) -> Skeleton:
    """The full model object: on the meta device for configs, loaded on CPU for sources with weights."""
    import os

    from ..modelspec.hf_config import build_on_meta, load_config, quiet_transformers
    from ..modelspec.sources import find_weights, one_line, resolve_source

    src = resolve_source(source)
    if src.kind == "onnx":
        raise InputError(f"{src.path}: run-parallel needs a PyTorch model (minilm, a Hugging Face directory or a "
                         f"config.json), not an ONNX file")
    cfg = load_config(src.config_path)
    cfg._attn_implementation = "sdpa"
    std = float(getattr(cfg, "initializer_range", None) or 0.02)
    has_weights = src.kind == "builtin" or (src.kind == "hf_dir" and bool(find_weights(src.path)))
    if not has_weights:
        return Skeleton(build_on_meta(cfg, src.config_path), True, src.name, std)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ..modelspec.hf_config import model_class

    cls = model_class(cfg)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr is for errors (and the ranks' logs)
    try:
        with quiet_transformers():
            model = cls.from_pretrained(str(src.path), config=cfg, dtype="float32")
    except Exception as exc:  # transformers raises many types for bad checkpoints
        raise InputError(f"{src.path}: transformers could not load the weights: {one_line(exc)}") from None
    return Skeleton(model.eval(), False, src.name, std)


def canonical_names(model) -> dict[int, str]:
    """id(parameter) → its name in the full model (tied weights get the first name, so both ends draw the same)."""
    return {id(p): n for n, p in model.named_parameters()}


def _seed_for(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 63)


def seeded_value(name: str, shape, *, seed: int, std: float, is_norm: bool):
    """The value a random-weight model has for parameter `name`: identical on every rank and in the reference."""
    import torch

    g = torch.Generator().manual_seed(_seed_for(seed, name))
    x = torch.randn(tuple(shape), generator=g, dtype=torch.float32) * std
    if is_norm and name.endswith("weight"):
        x += 1.0
    return x


def materialize(root, module, canon: dict[int, str], *, seed: int, std: float, device,
                placements: dict[tuple[int, str], tuple[Any, list]] | None = None) -> float:
    """Give every parameter and buffer of `module` (a part of `root`) real storage on `device`.

    `placements`: (id(owning module), attribute) → (device mesh, DTensor placements) for tensor-parallel
    parameters: this rank keeps only its slice, wrapped as a DTensor so `parallelize_module` accepts it as is.
    Returns the parameter bytes this rank holds (local slices only), in MB."""
    import torch
    from torch import nn

    placements = placements or {}
    held = 0
    done: dict[int, nn.Parameter] = {}  # a tied parameter is materialised once per rank
    for sub in module.modules():
        is_norm = "Norm" in type(sub).__name__
        for attr, p in list(sub._parameters.items()):
            if p is None:
                continue
            if id(p) in done:
                setattr(sub, attr, done[id(p)])
                continue
            name = canon.get(id(p))
            if name is None:
                raise InputError(f"parameter {type(sub).__name__}.{attr} is not part of the model")
            full = seeded_value(name, p.shape, seed=seed, std=std, is_norm=is_norm) if p.is_meta else p.detach()
            value = _place(full, placements.get((id(sub), attr)), device)
            new = nn.Parameter(value, requires_grad=False)
            held += _local_bytes(new)
            done[id(p)] = new
            setattr(sub, attr, new)
    for sub in module.modules():
        meta = [k for k, b in sub._buffers.items() if b is not None and b.is_meta]
        if meta:
            for k in meta:
                sub._buffers[k] = torch.empty_like(sub._buffers[k], device=device)
            root._init_weights(sub)  # recomputes rotary frequencies, position ids, ... from the config
        for k, b in sub._buffers.items():
            if b is not None and b.device != torch.device(device) and not b.is_meta:
                sub._buffers[k] = b.to(device)
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:
        raise InputError(f"cannot materialise {', '.join(left[:3])}: transformers' _init_weights does not set "
                         f"these buffers for {type(root).__name__}")
    return held / 1e6


def _place(full, placement, device):
    """This rank's piece of a full tensor: all of it, or its DTensor slice."""
    if placement is None:
        return full.to(device).contiguous()
    from torch.distributed.tensor import DTensor, Replicate, Shard

    mesh, places = placement
    (pl,) = places
    if isinstance(pl, Shard):
        n = mesh.size()
        local = full.chunk(n, dim=pl.dim)[mesh.get_local_rank()]
    else:
        assert isinstance(pl, Replicate)
        local = full
    local = local.to(device).contiguous().clone()
    return DTensor.from_local(local, mesh, places, run_check=False)


def _local_bytes(t) -> int:
    local = t.to_local() if hasattr(t, "to_local") else t
    return local.numel() * local.element_size()
