"""Vision transformers (ViT, and the image families whose inputs are `pixel_values`).

Layout (transformers 5, ViT/DeiT/BEiT): `embeddings`, `layers[i]` with `attention.{q,k,v,o}_proj`,
`layernorm_before` / `layernorm_after`, `mlp.fc1` (FFN up), `mlp.fc2` (FFN down); final `layernorm`; optional
`pooler`. DINOv2 and Swin take images too (so builds feed them pixels) but have no layout here: structured pruning
refuses them by structure.
"""

from __future__ import annotations

from .base import Layout

MODEL_TYPES = ("vit", "deit", "dinov2", "beit", "swin")


class VitLayout(Layout):
    family = "vit"
    kind = "vision"
    prunable = True
    pipeline_role = None

    def matches(self, base) -> bool:
        from torch import nn

        layers = getattr(base, "layers", None)
        return isinstance(layers, nn.ModuleList) and bool(len(layers)) \
            and hasattr(getattr(layers[0], "attention", None), "q_proj") \
            and hasattr(getattr(layers[0], "mlp", None), "fc1")

    def layers(self, base):
        return base.layers

    def set_layers(self, base, layers):
        base.layers = layers

    def attention(self, layer):
        return layer.attention

    def qkv(self, layer):
        a = layer.attention
        return [(a, "q_proj"), (a, "k_proj"), (a, "v_proj")]

    def out_proj(self, layer):
        return (layer.attention, "o_proj")

    def ffn(self, layer):
        return (layer.mlp, "fc1"), (layer.mlp, "fc2")

    def ffn_residual(self, layer):
        return layer.layernorm_after       # pre-LN: x + fc2(act(fc1(layernorm_after(x))))

    def layer_norms(self, layer):
        return [(layer, "layernorm_before"), (layer, "layernorm_after")]

    def head_dim(self, layer):
        return layer.attention.head_dim

    def set_num_heads(self, layer, n):
        layer.attention.num_attention_heads = n

    def embeddings(self, base):
        return base.embeddings

    def final_norm(self, base):
        return getattr(base, "layernorm", None)


LAYOUT = VitLayout()
