"""Tiny random-weight BERT and ViT (3 layers, 4 heads, hidden 32, FFN 64) and inputs for them: real transformers
classes, small enough that pruning/distillation tests run in well under a second each."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel, ViTConfig, ViTModel

H, D, INTER, LAYERS = 4, 32, 64, 3          # heads, hidden, FFN width, layers
HEAD_DIM = D // H
VOCAB = 120


def tiny_bert(attn: str = "sdpa", seed: int = 0, vocab_size: int = VOCAB) -> BertModel:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=H,
                     intermediate_size=INTER, max_position_embeddings=64, initializer_range=0.2)
    cfg._attn_implementation = attn
    return BertModel(cfg).eval()


def tiny_vit(attn: str = "sdpa", seed: int = 0) -> ViTModel:
    torch.manual_seed(seed)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=H,
                    intermediate_size=INTER, initializer_range=0.2)
    cfg._attn_implementation = attn
    return ViTModel(cfg).eval()


def text_inputs(seed: int = 1, batch: int = 6, length: int = 12) -> dict:
    """Random token ids with some padding (rows 0 and 1), so masking bugs show."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length // 2:] = 0
    mask[1, length - 3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def image_inputs(seed: int = 1, batch: int = 4) -> dict:
    return {"pixel_values": torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models are overhead-bound: with 2 intra-op threads on 2 shared, busy cores every op waits on a thread
    barrier (measured: 40 distillation steps 0.9 s with 1 thread, 13.6 s with 2). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
