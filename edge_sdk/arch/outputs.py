"""What does a model return that we measure and export? (The output wrapper around a transformers encoder.)

One definition, used both inside the exported graph and by the PyTorch reference, so the two sides can only
differ by what compression did:

- text encoders: `embeddings` = mean of `last_hidden_state` over real tokens (attention mask), L2-normalised —
  the sentence-transformers convention for all-MiniLM-L6-v2 and most BERT-style embedders;
- vision encoders: `embeddings` = the CLS token of `last_hidden_state`, L2-normalised (ViT/DINO convention);
- classifiers (the model returns `logits`): `logits`; quality adds top-1 agreement.

Pooling is computed inside the exported graph (wrapper below) rather than by the caller, so an on-device runner
needs no pooling code and the artifact's output is directly the thing the quality gate measured. The graph
still exports `last_hidden_state` for callers that want token vectors. The numpy twin of the text pooling, for
candidates that only return token vectors, is `quality.outputs.mean_pool_l2`.
"""

from __future__ import annotations

from typing import Literal

Head = Literal["embedding", "logits"]

TEXT_OUTPUTS = ("last_hidden_state", "embeddings")
LOGIT_OUTPUTS = ("logits",)


def _module():
    """Built lazily: importing torch costs seconds, and quality metrics do not need it."""
    import torch
    from torch import nn

    class EncoderOutputs(nn.Module):
        """Wraps a transformers encoder so its forward returns plain tensors in a fixed order (what the ONNX
        exporter and the reference function both call)."""

        def __init__(self, model: nn.Module, kind: Literal["text", "vision"], head: Head):
            super().__init__()
            self.model = model
            self.kind = kind
            self.head = head

        def output_names(self) -> tuple[str, ...]:
            return LOGIT_OUTPUTS if self.head == "logits" else TEXT_OUTPUTS

        def forward(self, first: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None):
            if self.kind == "vision":
                out = self.model(pixel_values=first)
            else:
                kwargs = {"input_ids": first, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    kwargs["token_type_ids"] = token_type_ids
                out = self.model(**kwargs)
            if self.head == "logits":
                return (out.logits,)
            hidden = out.last_hidden_state
            if self.kind == "vision":
                pooled = hidden[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
            return hidden, torch.nn.functional.normalize(pooled, p=2.0, dim=-1)

    return EncoderOutputs


def wrap(model, kind: Literal["text", "vision"], head: Head):
    """`EncoderOutputs(model, kind, head)`: forward(input_ids, attention_mask[, token_type_ids]) or
    forward(pixel_values) → (last_hidden_state, embeddings) or (logits,)."""
    return _module()(model, kind, head)


def detect_head(output) -> Head:
    """'embedding' when the model returns `last_hidden_state` (a bare encoder), 'logits' when it returns
    per-input `logits` (a classifier). Decided from a real forward output rather than the class name, so custom
    modules work too; anything else (token-level logits of a masked-LM head, tuples) is refused."""
    keys = set(output.keys()) if hasattr(output, "keys") else set()
    if "last_hidden_state" in keys:
        return "embedding"
    if "logits" in keys and getattr(output["logits"], "ndim", 0) == 2:
        return "logits"
    raise ValueError(f"model output {type(output).__name__} has neither last_hidden_state nor (batch, classes) "
                     f"logits (keys: {sorted(keys) or 'none'})")
