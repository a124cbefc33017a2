"""Loading a real PyTorch model (and its preprocessing) for a build.

- `minilm` and Hugging Face directories load their weights and tokenizer from disk (never from a hub).
- A `config.json` alone builds the architecture with random weights (seeded): useful to rehearse a deployment
  before the weights exist. Such a model has no vocabulary, so edge-sdk makes a real word-level tokenizer
  (the `tokenizers` library) from the most frequent words of its own corpora, sized to the config's vocab.
- ONNX files can be inspected and planned, but not built; decoder LLMs are built by decoder.py (the build
  dispatches them there before this module is asked for them).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..arch import is_decoder, is_vision
from ..errors import InputError
from ..modelspec.hf_config import load_config, model_class, quiet_transformers
from ..modelspec.sources import require_weights, resolve_source

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass
class LoadedModel:
    model: Any            # torch nn.Module in eval mode
    tokenizer: Any        # transformers tokenizer, or None for vision models
    kind: Literal["text", "vision"]
    name: str
    source: str
    random_weights: bool
    image_size: int | None = None
    channels: int | None = None


def _kind(cfg) -> Literal["text", "vision"]:
    return "vision" if is_vision(getattr(cfg, "model_type", None)) else "text"


def _check_buildable(cfg, where: str) -> None:
    if getattr(cfg, "is_decoder", False) or is_decoder(getattr(cfg, "model_type", None)):
        raise InputError(f"{where}: '{cfg.model_type}' is a decoder; `edge-sdk build` compresses encoders and ViTs "
                         f"(decoders can be inspected, planned and run with `run-parallel`)")


def word_tokenizer(vocab_size: int, max_length: int, texts: list[str]):
    """A word-level tokenizer with BERT's special tokens and the `vocab_size` most frequent words of `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIALS):
        raise InputError(f"config field 'vocab_size' is {vocab_size}; expected > {len(SPECIALS)}")
    counts = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for w, _ in counts.most_common(vocab_size - len(SPECIALS)):
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length)


def load_for_build(model: str, *, seed: int = 0, corpus: list[str] | None = None) -> LoadedModel:
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    src = resolve_source(model)
    if src.kind == "onnx":
        raise InputError(f"{src.path}: an ONNX file can be inspected and planned, but a build needs the PyTorch "
                         f"model (a Hugging Face directory or a config.json)")
    cfg = load_config(src.config_path)
    _check_buildable(cfg, str(src.config_path))
    kind = _kind(cfg)
    cls = model_class(cfg)
    max_len = int(getattr(cfg, "max_position_embeddings", 512) or 512)
    if src.kind in ("builtin", "hf_dir"):
        require_weights(src.path)
        from transformers import AutoTokenizer

        try:
            with quiet_transformers():
                m = cls.from_pretrained(str(src.path), local_files_only=True)
        except Exception as exc:  # corrupt or mismatched weights
            raise InputError(f"{src.path}: cannot load the weights: {' '.join(str(exc).split())[:300]}") from None
        tokenizer = None
        if kind == "text":
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(src.path), local_files_only=True)
            except Exception:
                tokenizer = None
            if tokenizer is None:
                tokenizer = word_tokenizer(int(cfg.vocab_size), max_len, corpus or [])
        random = False
    else:
        torch.manual_seed(seed)
        with quiet_transformers():
            m = cls(cfg)
        tokenizer = word_tokenizer(int(cfg.vocab_size), max_len, corpus or []) if kind == "text" else None
        random = True
    m.eval()
    return LoadedModel(model=m, tokenizer=tokenizer, kind=kind, name=src.name, source=model, random_weights=random,
                       image_size=getattr(cfg, "image_size", None) if kind == "vision" else None,
                       channels=getattr(cfg, "num_channels", 3) if kind == "vision" else None)


def tokenizer_files(tokenizer, dest: Path) -> list[Path]:
    """Save the tokenizer for the device (tokenizer.json etc.)."""
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(dest))
    return sorted(p for p in dest.rglob("*") if p.is_file())
