"""LLaMA-style decoders (Llama, Mistral, Qwen2, Mixtral, Gemma): `embed_tokens`, `layers[i]` with
`self_attn.{q,k,v,o}_proj`, `mlp.{gate,up,down}_proj`, `input_layernorm` / `post_attention_layernorm`, final `norm`,
`rotary_emb`, and `lm_head` on the causal-LM class.

GPT-2 and Phi are known decoders too (a build refuses them, inspection and planning work), but their module trees
differ (GPT-2: `h[i].attn.c_attn`; Phi: no final `norm`), so `matches` is false for them and parallel execution
refuses them by structure.
"""

from __future__ import annotations

from .base import Layout

MODEL_TYPES = ("llama", "mistral", "qwen2", "mixtral", "gemma", "phi", "gpt2")


class LlamaLayout(Layout):
    family = "llama"
    kind = "decoder"
    prunable = False
    pipeline_role = "decoder"

    def matches(self, base) -> bool:
        return all(hasattr(base, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb"))

    def layers(self, base):
        return base.layers

    def set_layers(self, base, layers):
        base.layers = layers

    def attention(self, layer):
        return layer.self_attn

    def qkv(self, layer):
        a = layer.self_attn
        return [(a, "q_proj"), (a, "k_proj"), (a, "v_proj")]

    def out_proj(self, layer):
        return (layer.self_attn, "o_proj")

    def ffn(self, layer):
        return (layer.mlp, "up_proj"), (layer.mlp, "down_proj")

    def ffn_gate(self, layer):
        return (layer.mlp, "gate_proj")

    def layer_norms(self, layer):
        return [(layer, "input_layernorm"), (layer, "post_attention_layernorm")]

    def head_dim(self, layer):
        return layer.self_attn.head_dim

    def set_num_heads(self, layer, n):
        raise NotImplementedError("decoder head pruning is not supported")

    def embeddings(self, base):
        return base.embed_tokens

    def final_norm(self, base):
        return base.norm

    def rotary(self, base):
        return base.rotary_emb

    def head(self, model):
        return getattr(model, "lm_head", None)

    def block_kwargs(self, config, hidden, rotary=None):
        import torch
        from transformers.masking_utils import create_causal_mask

        pos = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        return {"attention_mask": create_causal_mask(config=config, inputs_embeds=hidden, attention_mask=None,
                                                     cache=None, position_ids=pos),
                "position_embeddings": rotary(hidden, position_ids=pos), "position_ids": pos}

    def output_name(self, model):
        return "logits" if getattr(model, "lm_head", None) is not None else "last_hidden_state"


LAYOUT = LlamaLayout()
