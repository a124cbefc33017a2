"""How does a list of texts become model-input batches (tokenised, padded to the batch's longest, truncated)?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

if TYPE_CHECKING:  # pragma: no cover - keep `import edge_sdk.data` free of torch
    import torch


def text_batches(tokenizer, texts: Sequence[str], *, batch_size: int = 32,
                 max_length: int = 64) -> Iterator[dict[str, "torch.Tensor"]]:
    """Padding to the longest in the batch, not to max_length: real sentences are 10–20 tokens."""
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        yield dict(enc)


def length_grouped(texts: Sequence[str], batch_size: int, *, seed: int = 0, window: int = 50) -> list[str]:
    """Reorder texts so each batch holds similar lengths (≈2× less padding on WordNet-length sentences), while the
    batch order stays random: sort within windows of `window` batches, then shuffle whole batches."""
    import random

    rng = random.Random(seed)
    order = list(texts)
    rng.shuffle(order)
    batches: list[list[str]] = []
    span = batch_size * window
    for i in range(0, len(order), span):
        chunk = sorted(order[i:i + span], key=len)
        batches.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return [t for b in batches for t in b]
