"""What do we measure quality on?

- Text: `data/eval_sentences.txt`, 350 English sentences written for this project (not taken from a dataset):
  everyday life, news-like, science, tech, medical, legal, sports, food, travel, questions, instructions,
  dialogue, short and long, with near-paraphrase pairs next to each other so that similarity *ranking* is
  meaningful (a good embedding puts a paraphrase above an unrelated sentence; Spearman checks that survives).
- Images: deterministic synthetic images (gradients, shapes, checkerboards, smoothed noise) from a fixed seed.
  They are not photographs, so they check that a compressed ViT computes the same function as the original on
  varied inputs, not that it still recognises cats; pass real data with `--eval-data` for that.
- User data (`--eval-data`): for text models a UTF-8 text file, one input per line; for vision models image files
  (a directory of them, or a list), or `.npy` / `.npz` arrays [N, C, H, W] / [N, H, W] (how pixels become
  pixel_values: `images.py`). Every mistake is one InputError that names the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .images import ImageFormat, image_files_in, is_array_file, is_image_file, load_images

BUILTIN_SENTENCES = "eval_sentences.txt"


@dataclass(frozen=True)
class EvalData:
    """Inputs plus the one line that says what they are (goes into QualityReport.eval_data)."""

    name: str
    inputs: list[str] | np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)


def _spread(items: list, n: int | None) -> list:
    """n items evenly spread over the list (deterministic; covers every domain of the file, not just the first)."""
    if n is None or n >= len(items):
        return list(items)
    if n < 1:
        raise InputError(f"evaluation sample count must be >= 1, got {n}")
    idx = np.unique(np.linspace(0, len(items) - 1, n).round().astype(int))
    return [items[i] for i in idx]


def builtin_sentences(n: int | None = None) -> EvalData:
    """The shipped evaluation sentences (all of them, or n spread over the file)."""
    text = resources.files(__package__).joinpath("data", BUILTIN_SENTENCES).read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    chosen = _spread(lines, n)
    return EvalData(f"builtin {BUILTIN_SENTENCES} ({len(chosen)} of {len(lines)} sentences)", chosen)


def _spread_rows(arr: np.ndarray, n: int | None) -> np.ndarray:
    if n is None or n >= len(arr):
        return arr
    return arr[_spread(list(range(len(arr))), n)]


def load_eval_data(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], n: int | None = None, *,
                   kind: str = "text", image: ImageFormat | None = None, flag: str = "--eval-data") -> EvalData:
    """A user's evaluation inputs. Text models: a UTF-8 text file, one input per line, blank lines ignored. Vision
    models (`kind="vision"`, `image` = the model's input format): an image file, a directory of them, a list of
    them, or .npy/.npz arrays (see images.py)."""
    if kind == "vision":
        return _load_eval_images(path, n, image or ImageFormat(), flag)
    if not isinstance(path, (str, os.PathLike)) and len(path) == 1:
        path = path[0]
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"--eval-data: {len(path)} files given; a text model takes one UTF-8 text file, one input "
                         f"per line")
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"--eval-data {p}: no such file")
    if not p.is_file():
        raise InputError(f"--eval-data {p}: not a regular file (expected a UTF-8 text file, one input per line)")
    if is_image_file(p) or is_array_file(p):
        raise InputError(f"--eval-data {p}: images/arrays are evaluation data for vision models; this is a text "
                         f"model (expected a UTF-8 text file, one input per line)")
    raw = p.read_bytes()
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(f"--eval-data {p}: binary file (NUL byte at offset {nul}); "
                         f"expected UTF-8 text, one input per line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"--eval-data {p}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                         f"expected UTF-8 text, one input per line") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"--eval-data {p}: empty (no non-blank lines); expected one input per line")
    chosen = _spread(lines, n)
    return EvalData(f"{p} ({len(chosen)} of {len(lines)} lines)", chosen)


def _load_eval_images(path, n: int | None, fmt: ImageFormat, flag: str) -> EvalData:
    given = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not given:
        raise InputError(f"{flag}: no files given (expected images, a directory of them, or .npy/.npz arrays)")
    paths = [Path(x).expanduser() for x in given]
    if len(paths) == 1 and paths[0].is_dir():
        files = image_files_in(paths[0], flag)
        what = f"{paths[0]}/ ({len(files)} files)"
    else:
        bad = next((p for p in paths if p.is_file() and not (is_image_file(p) or is_array_file(p))), None)
        if bad is not None:
            raise InputError(f"{flag} {bad}: the model is a vision model; expected image files "
                             f"(png/jpg/...), a directory of them, or .npy/.npz arrays {fmt.expected()}")
        files = paths
        what = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files ({paths[0].name}, ...)"
    images = load_images(files, fmt, flag)
    chosen = _spread_rows(images, n)
    return EvalData(f"{what}: {len(chosen)} of {len(images)} images", chosen)


def synthetic_images(n: int = 32, image_size: int = 224, channels: int = 3, seed: int = 0,
                     mean: float = 0.5, std: float = 0.5) -> EvalData:
    """n float32 (C, H, W) images in ViT's normalised range ((x - mean) / std of [0, 1] pixels).

    Four families in turn — linear colour gradients, filled circles/rectangles on a background, checkerboards of
    random period, and box-blurred noise textures — so the model sees smooth areas, edges, periodic structure and
    texture. Fixed seed: the same images on every machine and run.
    """
    if n < 1:
        raise InputError(f"synthetic image count must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    h = w = image_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= max(h - 1, 1)
    xx /= max(w - 1, 1)
    out = np.empty((n, channels, h, w), dtype=np.float32)
    for i in range(n):
        family = i % 4
        if family == 0:  # gradient in a random direction, per-channel colour ramps
            angle = rng.uniform(0, 2 * np.pi)
            t = np.cos(angle) * xx + np.sin(angle) * yy
            t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
            img = np.stack([rng.uniform(0, 0.5) + rng.uniform(0.2, 0.5) * (t if c % 2 == 0 else 1 - t)
                            for c in range(channels)])
        elif family == 1:  # shapes on a flat background
            img = np.broadcast_to(rng.uniform(0, 1, (channels, 1, 1)), (channels, h, w)).copy()
            for _ in range(rng.integers(2, 6)):
                colour = rng.uniform(0, 1, (channels, 1))
                cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
                if rng.random() < 0.5:
                    mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
                else:
                    mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r * rng.uniform(0.3, 1.5))
                img[:, mask] = colour
        elif family == 2:  # checkerboard of random period and two random colours
            period = int(rng.integers(4, max(5, image_size // 4)))
            board = ((np.arange(h)[:, None] // period + np.arange(w)[None, :] // period) % 2).astype(np.float32)
            a, b = rng.uniform(0, 1, (2, channels, 1, 1))
            img = a * board + b * (1 - board)
        else:  # smoothed noise texture (box blur by cumulative sums)
            k = int(rng.integers(1, 8))
            noise = rng.uniform(0, 1, (channels, h + 2 * k, w + 2 * k)).astype(np.float32)
            c = noise.cumsum(1).cumsum(2)
            c = np.pad(c, ((0, 0), (1, 0), (1, 0)))
            s = 2 * k + 1
            blurred = (c[:, s:, s:] - c[:, :-s, s:] - c[:, s:, :-s] + c[:, :-s, :-s]) / (s * s)
            img = blurred[:, :h, :w]
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
        out[i] = (np.clip(img, 0, 1) - mean) / std
    return EvalData(f"synthetic images (seed {seed}, {n} x {channels}x{h}x{w}: gradients, shapes, checkerboards, "
                    f"noise)", out)


def default_eval_data(model_kind: str, n: int | None = None, *, image_size: int = 224, channels: int = 3
                      ) -> EvalData:
    """What the build measures on when the user gives no --eval-data."""
    if model_kind == "vision":
        return synthetic_images(n or 32, image_size=image_size, channels=channels)
    return builtin_sentences(n)
