"""How is a transformer encoder physically cut, and what was kept?

transformers 5 removed `model.prune_heads` and the `pruned_heads` config field, and `save_pretrained` cannot
express per-layer head counts. So the cut is done here by hand with the library's own helper
(`transformers.pytorch_utils.prune_linear_layer`), and everything that was kept is written into a
`PruningRecord` — indices into the ORIGINAL model — from which `apply_record` rebuilds the same architecture
from the base config (used by `pruned_io.load_pruned`).

Where heads, FFN neurons and layers live is model-architecture knowledge: the `Layout`s of `edge_sdk/arch/` (every
family with `prunable = True`: BERT-family encoders and ViT today), found by structure, so subclasses and task heads
work through `model.base_model`. Both attention forwards reshape with `view(..., -1, head_dim)`, so after the cut
only the head *count* changes; eager and SDPA paths both work (tested).

The record is a pass output: it lives in `BuildState.pruning`, never on the module.
"""

from __future__ import annotations

import json
from typing import Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from ..arch import Layout, base_model, find_layout
from ..errors import InputError


class PruningRecord(BaseModel):
    """What survived structured pruning, as indices into the original model (JSON-serialisable)."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field(description="'bert' or 'vit' (which module layout was cut)")
    model_class: str = Field(description="transformers class to rebuild, e.g. BertModel")
    base_config: dict = Field(description="the unpruned model's config (config.to_dict())")
    num_layers: int = Field(description="layers in the original model")
    num_heads: int = Field(description="attention heads per layer in the original model")
    intermediate_size: int = Field(description="FFN width in the original model")
    kept_layers: list[int] = Field(description="original indices of the layers that remain, in order")
    kept_heads: list[list[int]] = Field(description="per remaining layer: original head indices kept")
    kept_ffn: list[list[int]] = Field(description="per remaining layer: original FFN neuron indices kept")
    steps: list[dict] = Field(default_factory=list, description="what each pruning call did (config, scores' kind)")

    @classmethod
    def identity(cls, model: nn.Module) -> "PruningRecord":
        """The record of an unpruned model: everything kept."""
        layout = layout_of(model)
        base = base_model(model)
        layers = layout.layers(base)
        n_heads = layout.num_heads(layers[0])
        inter = layout.ffn_width(layers[0])
        return cls(family=layout.family, model_class=type(model).__name__,
                   base_config=json.loads(model.config.to_json_string(use_diff=False)),  # as it will be stored
                   num_layers=len(layers), num_heads=n_heads, intermediate_size=inter,
                   kept_layers=list(range(len(layers))), kept_heads=[list(range(n_heads)) for _ in layers],
                   kept_ffn=[list(range(inter)) for _ in layers])

    def summary(self) -> str:
        heads = sorted({len(h) for h in self.kept_heads})
        ffn = sorted({len(f) for f in self.kept_ffn})
        return (f"layers {len(self.kept_layers)}/{self.num_layers}, heads/layer {heads}/{self.num_heads}, "
                f"FFN/layer {ffn}/{self.intermediate_size}")


def layout_of(model: nn.Module) -> Layout:
    """The prunable layout of `model`, found by structure; InputError for anything else."""
    layout = find_layout(model)
    if layout is not None and layout.prunable:
        if layout.has_cross_attention(layout.layers(base_model(model))[0]):
            raise InputError(f"structured pruning: {type(model).__name__} has cross-attention (a decoder); "
                             "only encoders are supported")
        return layout
    raise InputError(f"structured pruning supports BERT-family encoders (BertModel, MiniLM, RobertaModel) and "
                     f"ViTModel; got {type(model).__name__}")


def _index(idx: Sequence[int]) -> torch.LongTensor:
    return torch.as_tensor(sorted(int(i) for i in idx), dtype=torch.long)


def keep_heads(layout: Layout, layer: nn.Module, local_heads: Sequence[int]) -> None:
    """Keep only the given heads (indices into the layer's CURRENT heads) of one layer."""
    d = layout.head_dim(layer)
    heads = sorted(int(h) for h in local_heads)
    if not heads:
        raise InputError("structured pruning would leave a layer with 0 attention heads")
    rows = torch.cat([torch.arange(h * d, (h + 1) * d) for h in heads])
    for owner, name in layout.qkv(layer):
        setattr(owner, name, prune_linear_layer(getattr(owner, name), rows, dim=0))
    owner, name = layout.out_proj(layer)
    setattr(owner, name, prune_linear_layer(getattr(owner, name), rows, dim=1))
    layout.set_num_heads(layer, len(heads))


def keep_ffn(layout: Layout, layer: nn.Module, local_neurons: Sequence[int]) -> None:
    """Keep only the given FFN intermediate neurons (indices into the CURRENT ones) of one layer."""
    if not len(local_neurons):
        raise InputError("structured pruning would leave a layer with 0 FFN neurons")
    idx = _index(local_neurons)
    (up_o, up_n), (down_o, down_n) = layout.ffn(layer)
    setattr(up_o, up_n, prune_linear_layer(getattr(up_o, up_n), idx, dim=0))
    setattr(down_o, down_n, prune_linear_layer(getattr(down_o, down_n), idx, dim=1))


def keep_layers(layout: Layout, model: nn.Module, local_layers: Sequence[int]) -> None:
    """Keep only the given layers (indices into the CURRENT layers), in order; config.num_hidden_layers follows."""
    base = base_model(model)
    layers = layout.layers(base)
    kept = sorted(int(i) for i in local_layers)
    layout.set_layers(base, nn.ModuleList([layers[i] for i in kept]))
    for new_i, layer in enumerate(layout.layers(base)):    # BERT layers carry layer_idx (used only by KV caches)
        for mod in layer.modules():
            if hasattr(mod, "layer_idx"):
                mod.layer_idx = new_i
    model.config.num_hidden_layers = len(kept)


def apply_keep(model: nn.Module, record: PruningRecord, new: PruningRecord) -> PruningRecord:
    """Cut `model` (currently described by `record`) down to `new` (a subset of `record`); returns `new`.

    Indices in both records are ORIGINAL indices; this maps them to the model's current positions.
    """
    layout = layout_of(model)
    if not set(new.kept_layers) <= set(record.kept_layers):
        raise ValueError("new record keeps layers the model no longer has")
    pos = {orig: i for i, orig in enumerate(record.kept_layers)}
    keep_layers(layout, model, [pos[o] for o in new.kept_layers])
    layers = layout.layers(base_model(model))
    for layer, orig, heads, ffn in zip(layers, new.kept_layers, new.kept_heads, new.kept_ffn):
        old_heads = record.kept_heads[pos[orig]]
        old_ffn = record.kept_ffn[pos[orig]]
        if list(heads) != list(old_heads):
            hpos = {h: i for i, h in enumerate(old_heads)}
            keep_heads(layout, layer, [hpos[h] for h in heads])
        if list(ffn) != list(old_ffn):
            fpos = {f: i for i, f in enumerate(old_ffn)}
            keep_ffn(layout, layer, [fpos[f] for f in ffn])
    return new


def apply_record(model: nn.Module, record: PruningRecord) -> nn.Module:
    """Cut a freshly built UNPRUNED model (from `record.base_config`) to the architecture in `record`."""
    apply_keep(model, PruningRecord.identity(model), record)
    return model
