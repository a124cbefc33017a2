"""BERT-family encoders (BertModel incl. MiniLM, RoBERTa, XLM-R, ELECTRA).

Layout: `embeddings`, `encoder.layer[i]` with `attention.self.{query,key,value}`, `attention.output.dense` (+ its
LayerNorm), `intermediate.dense` (FFN up), `output.dense` (FFN down, + its LayerNorm); optional `pooler`. The
attention forward reshapes with `view(..., -1, head_dim)`, so after a head cut only the head *count* changes.
"""

from __future__ import annotations

from .base import Layout

MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra")


class BertLayout(Layout):
    family = "bert"
    kind = "encoder"
    prunable = True
    pipeline_role = "encoder"

    def matches(self, base) -> bool:
        from torch import nn

        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if not (isinstance(layers, nn.ModuleList) and len(layers) and hasattr(base, "embeddings")):
            return False
        first = layers[0]
        return hasattr(getattr(first, "attention", None), "self") and hasattr(first.attention.self, "query") \
            and hasattr(first, "intermediate")

    def has_cross_attention(self, layer) -> bool:
        return bool(getattr(layer, "add_cross_attention", False))

    def layers(self, base):
        return base.encoder.layer

    def set_layers(self, base, layers):
        base.encoder.layer = layers

    def attention(self, layer):
        return layer.attention.self

    def qkv(self, layer):
        a = layer.attention.self
        return [(a, "query"), (a, "key"), (a, "value")]

    def out_proj(self, layer):
        return (layer.attention.output, "dense")

    def ffn(self, layer):
        return (layer.intermediate, "dense"), (layer.output, "dense")

    def ffn_residual(self, layer):
        return layer.intermediate          # BertOutput: LayerNorm(down(h) + attention_output)

    def layer_norms(self, layer):
        return [(layer.attention.output, "LayerNorm"), (layer.output, "LayerNorm")]

    def head_dim(self, layer):
        return layer.attention.self.attention_head_size

    def set_num_heads(self, layer, n):
        a = layer.attention.self
        a.num_attention_heads = n           # read by nothing in forward (view(-1, head_size)) but kept truthful
        a.all_head_size = n * a.attention_head_size

    def embeddings(self, base):
        return base.embeddings

    def embed(self, embeddings, x):
        return embeddings(input_ids=x)

    def block_kwargs(self, config, hidden, rotary=None):
        from transformers.masking_utils import create_bidirectional_mask

        return {"attention_mask": create_bidirectional_mask(config=config, inputs_embeds=hidden,
                                                            attention_mask=None)}


LAYOUT = BertLayout()
