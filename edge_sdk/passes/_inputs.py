"""Where do the pruning/recovery passes get unlabeled model inputs from a BuildState?

Text: `state.calibration_texts` (the user's --calibration-data) else the shipped general-domain corpus (for
training, `state.recovery_texts` else the shipped recovery corpus); the quality gate's held-out sentences are always
excluded. Vision: `state.calibration_images` (no substitute exists: random pixels would teach the student noise).
"""

from __future__ import annotations

import random
from typing import Callable, Iterable

import torch

from ..data.batches import length_grouped, text_batches
from ..data.calibration import held_out_sentences, load_calibration_texts
from ..errors import InputError
from .prune_importance import Batch
from .state import BuildState


def calibration_texts(state: BuildState, seed: int = 0, *, recovery: bool = False) -> list[str]:
    """`recovery`: all the text the build has for training (state.recovery_texts), not the calibration sample."""
    given = (state.recovery_texts if recovery else ()) or state.calibration_texts
    if given:
        banned = {" ".join(s.lower().split()) for s in held_out_sentences()}
        texts = [t for t in given if " ".join(t.lower().split()) not in banned]
        random.Random(seed).shuffle(texts)
        return texts
    return load_calibration_texts(seed=seed, recovery=recovery)


def _images(state: BuildState, what: str) -> torch.Tensor:
    if state.calibration_images is None or len(state.calibration_images) == 0:
        raise InputError(f"{what} on a vision model needs calibration images (--calibration-data with images)")
    return torch.as_tensor(state.calibration_images, dtype=torch.float32)


def calibration_batches(state: BuildState, samples: int, *, batch_size: int = 16,
                        max_length: int = 128, recovery: bool = False) -> list[Batch]:
    """A fixed small set of inputs for importance scores; `recovery`: drawn from all the build's training text
    (state.recovery_texts), for uses that need more than the calibration sample."""
    if state.model_kind == "vision":
        px = _images(state, "structured pruning")[:samples]
        return [{"pixel_values": px[i:i + batch_size]} for i in range(0, len(px), batch_size)]
    if state.tokenizer is None:
        raise InputError("structured pruning of a text model needs its tokenizer")
    texts = calibration_texts(state, recovery=recovery)[:samples]
    return list(text_batches(state.tokenizer, texts, batch_size=batch_size, max_length=max_length))


def training_stream(state: BuildState, batch_size: int, max_length: int,
                    seed: int = 0) -> Callable[[int], Iterable[Batch]]:
    """epoch → batches, reshuffled every epoch (for distillation)."""
    if state.model_kind == "vision":
        px = _images(state, "distillation")

        def images(epoch: int):
            order = torch.randperm(len(px), generator=torch.Generator().manual_seed(seed + epoch))
            for i in range(0, len(px), batch_size):
                yield {"pixel_values": px[order[i:i + batch_size]]}
        return images
    if state.tokenizer is None:
        raise InputError("distillation of a text model needs its tokenizer")
    texts = calibration_texts(state, seed, recovery=True)

    def text(epoch: int):
        order = length_grouped(texts, batch_size, seed=seed + epoch)
        return text_batches(state.tokenizer, order, batch_size=batch_size, max_length=max_length)
    return text
