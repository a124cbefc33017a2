"""How do image files and arrays become the `pixel_values` a ViT takes?

- Image files (png, jpg, bmp, gif, webp, tiff) are read with Pillow, converted to the model's channel count
  (grayscale "L" for 1 channel, "RGB" for 3), resized to the model's square input (bilinear), scaled to [0, 1] and
  normalised with the model's image mean/std — what a transformers ViT image processor does.
- `.npy` / `.npz` arrays of shape [N, C, H, W] or [N, H, W] (grayscale). uint8 arrays are pixels 0–255 and are
  scaled and normalised like image files; float arrays are taken as ready `pixel_values` (already normalised).
  Arrays are not resized: a wrong size is an error that says which shape was expected. A 1-channel array given to a
  3-channel model is repeated over the channels (grayscale as RGB); every other mismatch is refused.
- The image mean/std come from the model directory's `preprocessor_config.json` when it has one, else 0.5 / 0.5
  (the ViT default, also what the synthetic evaluation images use).

Every mistake is one InputError (exit 2) naming the flag, the file and the shape that was expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")
NPZ_KEYS = ("pixel_values", "inputs", "images")


@dataclass(frozen=True)
class ImageFormat:
    """What the model takes: square `image_size` pixels, `channels` channels, normalised with mean/std."""

    image_size: int = 224
    channels: int = 3
    mean: tuple[float, ...] = field(default=(0.5,))
    std: tuple[float, ...] = field(default=(0.5,))

    def expected(self) -> str:
        s, c = self.image_size, self.channels
        return f"[N, {c}, {s}, {s}]" + (f" or [N, {s}, {s}]" if c in (1, 3) else "")

    def normalise(self, pixels01: np.ndarray) -> np.ndarray:
        """[N, C, H, W] values in [0, 1] → float32 pixel_values."""
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return ((pixels01.astype(np.float32) - mean) / std).astype(np.float32)


def image_format(model_source: str | os.PathLike[str] | None, image_size: int = 224, channels: int = 3
                 ) -> ImageFormat:
    """The model's input format; mean/std from `preprocessor_config.json` beside its config when present."""
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    if model_source is not None:
        p = Path(model_source).expanduser()
        cfg = (p if p.is_dir() else p.parent) / "preprocessor_config.json"
        if p.exists() and cfg.is_file():
            try:
                data = json.loads(cfg.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"{cfg}: not valid JSON ({exc})") from None
            mean = _per_channel(cfg, "image_mean", data.get("image_mean", 0.5), channels)
            std = _per_channel(cfg, "image_std", data.get("image_std", 0.5), channels)
            if min(std) <= 0:
                raise InputError(f"{cfg}: field 'image_std' must be > 0, got {list(std)}")
    return ImageFormat(image_size=image_size, channels=channels, mean=mean, std=std)


def _per_channel(where: Path, name: str, value, channels: int) -> tuple[float, ...]:
    vals = value if isinstance(value, list) else [value]
    try:
        out = tuple(float(v) for v in vals)
    except (TypeError, ValueError):
        raise InputError(f"{where}: field '{name}' must be a number or a list of numbers, got {value!r}") from None
    if len(out) not in (1, channels):
        raise InputError(f"{where}: field '{name}' has {len(out)} values; expected 1 or {channels} (channels)")
    return out


def is_image_file(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES


def is_array_file(p: Path) -> bool:
    return p.suffix.lower() in ARRAY_SUFFIXES


def read_image_file(path: Path, fmt: ImageFormat, flag: str) -> np.ndarray:
    """One image file → [C, H, W] float32 in [0, 1] (resized to the model's input)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with tensorboard, a dependency
        raise InputError(f"{flag} {path}: reading {path.suffix} images needs Pillow (pip install pillow); or pass "
                         f"the pixels as .npy/.npz {fmt.expected()}") from None
    try:
        with Image.open(path) as im:
            im = im.convert("L" if fmt.channels == 1 else "RGB")
            im = im.resize((fmt.image_size, fmt.image_size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{flag} {path}: not a readable image ({' '.join(str(exc).split())[:160]})") from None
    if fmt.channels not in (1, 3):
        raise InputError(f"{flag} {path}: the model takes {fmt.channels} channels; image files give 1 or 3 "
                         f"(pass a .npy {fmt.expected()} instead)")
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def to_pixel_values(arr: np.ndarray, where: str, fmt: ImageFormat) -> np.ndarray:
    """A loaded array → float32 [N, C, H, W] pixel_values, or InputError naming `where` and the expected shape."""
    exp = f"expected {fmt.expected()}: uint8 pixels 0-255, or float pixel_values already normalised"
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.uint8):
        raise InputError(f"{where}: dtype {arr.dtype}; {exp}")
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise InputError(f"{where}: shape {list(arr.shape)}; {exp}")
    n, c, h, w = arr.shape
    if n == 0:
        raise InputError(f"{where}: no images (shape {list(arr.shape)}); {exp}")
    if c not in (1, fmt.channels) and arr.shape[-1] in (1, fmt.channels):
        raise InputError(f"{where}: shape {list(arr.shape)} looks channels-last; {exp} "
                         f"(numpy: arr.transpose(0, 3, 1, 2))")
    if (h, w) != (fmt.image_size, fmt.image_size) or c not in (1, fmt.channels):
        raise InputError(f"{where}: shape {list(arr.shape)}; the model takes {fmt.channels} channel(s) of "
                         f"{fmt.image_size}x{fmt.image_size} pixels: {exp}")
    if c == 1 and fmt.channels != 1:
        arr = np.repeat(arr, fmt.channels, axis=1)
    if arr.dtype == np.uint8:
        return fmt.normalise(arr.astype(np.float32) / 255.0)
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise InputError(f"{where}: contains NaN or inf; {exp}")
    return out


def read_arrays(path: Path, flag: str) -> dict[str, np.ndarray]:
    """The arrays of a .npy (key '') or .npz file; never unpickles (a data file must not run code)."""
    npy = path.suffix.lower() == ".npy"
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    if magic[:6 if npy else 2] != (b"\x93NUMPY" if npy else b"PK"):
        raise InputError(f"{flag} {path}: not a readable {path.suffix} file (it does not start like one; write it with "
                         f"numpy.{'save' if npy else 'savez'})")
    try:
        if npy:
            return {"": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        msg = "holds Python objects (pickled); expected plain numeric arrays" if "pickle" in str(exc) \
            else " ".join(str(exc).split())[:160]
        raise InputError(f"{flag} {path}: {msg}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{flag} {path}: not a readable {path.suffix} file ({' '.join(str(exc).split())[:160]})"
                         ) from None


def load_array_images(path: Path, fmt: ImageFormat, flag: str, keys: Sequence[str] = NPZ_KEYS) -> np.ndarray:
    """pixel_values from a .npy, or from the first of `keys` (or the only array) in a .npz."""
    arrays = read_arrays(path, flag)
    if "" in arrays:
        key = ""
    else:
        key = next((k for k in keys if k in arrays), None)
        if key is None and len(arrays) == 1:
            key = next(iter(arrays))
        if key is None:
            raise InputError(f"{flag} {path}: no array named {' / '.join(keys)} (has: {sorted(arrays) or 'none'}); "
                             f"expected one of them with shape {fmt.expected()}")
    where = f"{flag} {path}" + (f" array '{key}'" if key else "")
    return to_pixel_values(arrays[key], where, fmt)


def image_files_in(directory: Path, flag: str) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.is_file() and (is_image_file(p) or is_array_file(p)))
    if not files:
        raise InputError(f"{flag} {directory}: a directory with no image files ({', '.join(IMAGE_SUFFIXES)}) "
                         f"and no .npy/.npz arrays")
    return files


def load_images(paths: Sequence[Path], fmt: ImageFormat, flag: str) -> np.ndarray:
    """Image files and arrays, in the order given, as one float32 [N, C, H, W] array."""
    parts: list[np.ndarray] = []
    for p in paths:
        if not p.exists():
            raise InputError(f"{flag} {p}: no such file")
        if not p.is_file():
            raise InputError(f"{flag} {p}: not a regular file (expected an image or a .npy/.npz array)")
        if is_array_file(p):
            parts.append(load_array_images(p, fmt, flag))
        elif is_image_file(p):
            parts.append(fmt.normalise(read_image_file(p, fmt, flag)[None]))
        else:
            raise InputError(f"{flag} {p}: unknown image type '{p.suffix}' (expected one of "
                             f"{', '.join(IMAGE_SUFFIXES + ARRAY_SUFFIXES)})")
    return np.concatenate(parts, axis=0)
