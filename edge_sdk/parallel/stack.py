"""How a transformers model is cut into pipeline stages: embeddings → a range of blocks → final norm / head.

Each stage is an nn.Module that takes one tensor (token ids on the first stage, hidden states after that) and
returns one tensor, which is what `torch.distributed.pipelining.PipelineStage` sends between stages. What a block
needs besides the hidden states (the attention mask, rotary position embeddings) is recomputed on every stage from
the hidden states' shape with the same transformers helpers the model's own forward uses, so nothing but
activations crosses a stage boundary. Where embeddings, blocks, the final norm and the head live, and what a block
needs, is the family's `Layout` (edge_sdk/arch/); families with a `pipeline_role` run here, found by structure:

- encoder (BERT-like, arch/bert.py): embeddings → blocks; output = the last hidden state (no pooler, no task head).
- decoder (Llama-like, arch/llama.py): embeddings → blocks → final norm → `lm_head`; output = logits.

Inputs carry no padding (every token attends), which is what the run's random token ids are.
"""

from __future__ import annotations

import time
from typing import Callable

from torch import nn

from ..arch import Layout, base_model, find_layout
from ..errors import InputError


def _layout(model) -> Layout:
    layout = find_layout(model)
    if layout is None or layout.pipeline_role is None:
        raise InputError(f"{type(model).__name__}: run-parallel knows BERT-like encoders (embeddings + encoder.layer) "
                         f"and Llama-like decoders (embed_tokens + layers + norm + rotary_emb); this model is neither")
    return layout


def output_name(model) -> str:
    layout = _layout(model)
    return "last_hidden_state" if layout.pipeline_role == "encoder" else layout.output_name(model)


def output_width(model) -> int:
    cfg = model.config
    return cfg.vocab_size if output_name(model) == "logits" else cfg.hidden_size


class StageModule(nn.Module):
    """Blocks [first, last] of a model, plus the embeddings on the first stage and the head on the last.

    `on_enter` / `on_exit` are called around every forward (the worker times the stage and marks its status);
    `on_exit` gets the wall-clock and the process CPU seconds of the forward."""

    def __init__(self, model, first: int, last: int, *, is_first: bool, is_last: bool):
        super().__init__()
        layout = _layout(model)
        base = base_model(model)
        self.layout = layout
        self.family = layout.pipeline_role
        self.config = model.config
        self.first_layer, self.last_layer = first, last
        self.embed = layout.embeddings(base) if is_first else None
        self.blocks = nn.ModuleList(list(layout.layers(base))[first:last + 1])
        self.rotary = layout.rotary(base)
        decoder = self.family == "decoder"
        self.norm = layout.final_norm(base) if (decoder and is_last) else None
        self.head = layout.head(model) if (decoder and is_last) else None
        self.on_enter: Callable[[], None] | None = None
        self.on_exit: Callable[[float, float], None] | None = None

    def forward(self, x):
        if self.on_enter is not None:
            self.on_enter()
        t0, c0 = time.perf_counter(), time.process_time()
        h = self._forward(x)
        if self.on_exit is not None:
            self.on_exit(time.perf_counter() - t0, time.process_time() - c0)
        return h

    def _forward(self, x):
        h = self.layout.embed(self.embed, x) if self.embed is not None else x
        kw = self.layout.block_kwargs(self.config, h, self.rotary)
        for block in self.blocks:
            out = block(h, **kw)
            h = out[0] if isinstance(out, tuple) else out
        if self.norm is not None:
            h = self.norm(h)
        if self.head is not None:
            h = self.head(h)
        return h


def full_forward(model, input_ids):
    """The single-process reference: the model's own forward, not our stage decomposition."""
    out = model(input_ids=input_ids)
    return getattr(out, output_name(model))
