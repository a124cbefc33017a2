"""How a transformers model is cut into pipeline stages: embeddings → a range of blocks → final norm / head.

Each stage is an nn.Module that takes one tensor (token ids on the first stage, hidden states after that) and
returns one tensor, which is what `torch.distributed.pipelining.PipelineStage` sends between stages. What a block
needs besides the hidden states (the attention mask, rotary position embeddings) is recomputed on every stage from
the hidden states' shape with the same transformers helpers the model's own forward uses, so nothing but
activations crosses a stage boundary. Two families are supported, by structure rather than by class name:

- encoder (BERT-like): `embeddings`, `encoder.layer[i]`; output = the last hidden state (no pooler, no task head).
- decoder (Llama-like): `embed_tokens`, `layers[i]`, `norm`, `rotary_emb`, and the `lm_head`; output = logits.

Inputs carry no padding (every token attends), which is what the run's random token ids are.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from torch import nn

from ..errors import InputError


def family_parts(model) -> tuple[str, Any]:
    """('encoder' | 'decoder', the base model holding embeddings and blocks)."""
    base = getattr(model, "base_model", model)
    if hasattr(base, "embeddings") and hasattr(getattr(base, "encoder", None), "layer"):
        return "encoder", base
    if all(hasattr(base, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return "decoder", base
    raise InputError(f"{type(model).__name__}: run-parallel knows BERT-like encoders (embeddings + encoder.layer) and "
                     f"Llama-like decoders (embed_tokens + layers + norm + rotary_emb); this model is neither")


def blocks_of(model) -> list[nn.Module]:
    fam, base = family_parts(model)
    return list(base.encoder.layer if fam == "encoder" else base.layers)


def output_name(model) -> str:
    fam, _ = family_parts(model)
    return "last_hidden_state" if fam == "encoder" or getattr(model, "lm_head", None) is None else "logits"


def output_width(model) -> int:
    cfg = model.config
    return cfg.vocab_size if output_name(model) == "logits" else cfg.hidden_size


class StageModule(nn.Module):
    """Blocks [first, last] of a model, plus the embeddings on the first stage and the head on the last.

    `on_enter` / `on_exit` are called around every forward (the worker times the stage and marks its status);
    `on_exit` gets the wall-clock and the process CPU seconds of the forward."""

    def __init__(self, model, first: int, last: int, *, is_first: bool, is_last: bool):
        super().__init__()
        fam, base = family_parts(model)
        self.family = fam
        self.config = model.config
        self.first_layer, self.last_layer = first, last
        self.embed = (base.embeddings if fam == "encoder" else base.embed_tokens) if is_first else None
        self.blocks = nn.ModuleList(blocks_of(model)[first:last + 1])
        self.rotary = base.rotary_emb if fam == "decoder" else None
        self.norm = base.norm if (fam == "decoder" and is_last) else None
        self.head = getattr(model, "lm_head", None) if (fam == "decoder" and is_last) else None
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
        import torch

        if self.embed is not None:
            h = self.embed(input_ids=x) if self.family == "encoder" else self.embed(x)
        else:
            h = x
        if self.family == "encoder":
            from transformers.masking_utils import create_bidirectional_mask

            kw = {"attention_mask": create_bidirectional_mask(config=self.config, inputs_embeds=h,
                                                              attention_mask=None)}
        else:
            from transformers.masking_utils import create_causal_mask

            pos = torch.arange(h.shape[1], device=h.device).unsqueeze(0)
            kw = {"attention_mask": create_causal_mask(config=self.config, inputs_embeds=h, attention_mask=None,
                                                       cache=None, position_ids=pos),
                  "position_embeddings": self.rotary(h, position_ids=pos), "position_ids": pos}
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
