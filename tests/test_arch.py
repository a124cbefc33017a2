"""Model-architecture knowledge lives in edge_sdk/arch: every model_type the project claims maps to a family module,
and BERT / ViT / LLaMA models built from configs expose their blocks, attention, FFN, norms and embeddings through
their family's Layout."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, ViTConfig, ViTModel

from edge_sdk import arch
from edge_sdk.arch import registry


def test_every_claimed_model_type_maps_to_a_family_module():
    types = arch.model_types()
    assert {"bert", "roberta", "xlm-roberta", "electra", "vit", "deit", "llama", "mistral", "qwen2"} <= set(types)
    for model_type, family in types.items():
        module = arch.family_module(family)
        assert model_type in module.MODEL_TYPES and module.LAYOUT.family == family
        assert arch.kind_of_model_type(model_type) in ("encoder", "vision", "decoder")
    assert set(registry.FAMILIES) == set(types.values())
    # what the builder asks: vision inputs and decoders (refused by builds) come from here
    assert arch.is_vision("vit") and not arch.is_vision("bert")
    assert arch.is_decoder("llama") and arch.is_decoder("gpt2") and not arch.is_decoder("bert")
    assert arch.family_of_model_type("no-such-type") is None


def test_the_package_is_a_leaf_and_imports_no_torch_up_front():
    code = ("import sys, edge_sdk; before = set(sys.modules); "
            "import edge_sdk.arch, edge_sdk.arch.naming, edge_sdk.arch.outputs; edge_sdk.arch.model_types(); "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m == 'torch' or (m.startswith('edge_sdk.') and not "
            "(m.startswith('edge_sdk.arch') or m.startswith('edge_sdk.schemas')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def _bert():
    return BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=48, max_position_embeddings=32)).eval()


def _vit():
    return ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                              intermediate_size=40)).eval()


def _llama():
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, intermediate_size=56)).eval()


@pytest.mark.parametrize("build, family, layers, heads, head_dim, ffn", [
    (_bert, "bert", 2, 4, 8, 48), (_vit, "vit", 3, 2, 16, 40), (_llama, "llama", 2, 4, 8, 56)])
def test_layouts_expose_blocks_heads_ffn(build, family, layers, heads, head_dim, ffn):
    model = build()
    layout = arch.find_layout(model)
    assert layout is not None and layout.family == family
    base = arch.base_model(model)
    blocks = layout.layers(base)
    assert len(blocks) == layers
    block = blocks[0]
    assert layout.num_heads(block) == heads and layout.head_dim(block) == head_dim
    assert layout.ffn_width(block) == ffn
    q, k, v = (layout.linear(r) for r in layout.qkv(block))
    assert q.out_features == heads * head_dim
    assert layout.linear(layout.out_proj(block)).in_features == heads * head_dim
    up, down = (layout.linear(r) for r in layout.ffn(block))
    assert up.out_features == down.in_features == ffn
    assert all(isinstance(getattr(o, n), torch.nn.Module) for o, n in layout.layer_norms(block))
    assert isinstance(layout.embeddings(base), torch.nn.Module)
    if family == "llama":
        assert layout.ffn_gate(block) is not None and layout.head(model) is model.lm_head
        assert layout.output_name(model) == "logits" and layout.pipeline_role == "decoder"
        assert not layout.prunable
    else:
        assert layout.prunable and layout.ffn_gate(block) is None


def test_a_model_of_no_known_family_has_no_layout():
    assert arch.find_layout(torch.nn.Linear(2, 2)) is None
