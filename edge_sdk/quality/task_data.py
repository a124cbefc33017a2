"""What labelled data says whether a compressed model still does its task? (`--task-data FILE`)

- Vision models: a `.npz` with `inputs` (images as in `--eval-data` arrays: [N, C, H, W] or [N, H, W], uint8
  pixels or float pixel_values, see images.py) and `labels` (N class labels, integers or strings); optionally
  `train_mask` (N booleans: which rows train the linear probe of an embedding model; the rest test it). Without a
  mask the rows are split per class, half and half, with a fixed seed.
- Text models: a `.tsv` (text, a TAB, the label; one example per line; a first line `text<TAB>label` is a header)
  or a `.jsonl` (one `{"text": ..., "label": ...}` object per line, optionally `"split": "train" | "test"`).

Labels are kept as given (their string form names the class). Every mistake is one InputError naming the file,
the line or array, and what was expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import ImageFormat, read_arrays, to_pixel_values

FLAG = "--task-data"
TEXT_SUFFIXES = (".tsv", ".jsonl")


@dataclass(frozen=True)
class TaskData:
    """Labelled inputs. `labels` are indices into `classes` (the labels as given, sorted)."""

    name: str
    inputs: list[str] | np.ndarray
    labels: np.ndarray
    classes: list[str]
    train_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _encode_labels(raw: list | np.ndarray, where: str, n: int) -> tuple[np.ndarray, list[str]]:
    arr = np.asarray(raw)
    if arr.ndim != 1 or len(arr) != n:
        raise InputError(f"{where}: {n} inputs but labels of shape {list(arr.shape)}; expected one label per input")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{where}: labels must be class names or whole numbers, got {arr.dtype} values")
        arr = arr.astype(np.int64)
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype.kind in "USb"):
        raise InputError(f"{where}: labels of dtype {arr.dtype}; expected integers or strings")
    values, index = np.unique(arr, return_inverse=True)
    if len(values) < 2:
        raise InputError(f"{where}: every label is {values[0]!r}; a task needs at least 2 classes")
    return index.astype(np.int64), [str(v) for v in values]


def _load_npz(p: Path, fmt: ImageFormat) -> TaskData:
    if p.suffix.lower() != ".npz":
        raise InputError(f"{FLAG} {p}: a vision model's task data is a .npz with arrays 'inputs' and 'labels'")
    arrays = read_arrays(p, FLAG)
    missing = [k for k in ("inputs", "labels") if k not in arrays]
    if missing:
        raise InputError(f"{FLAG} {p}: no array {' or '.join(repr(k) for k in missing)} (has: "
                         f"{sorted(arrays) or 'none'}); expected 'inputs' {fmt.expected()} and 'labels' [N]")
    inputs = to_pixel_values(arrays["inputs"], f"{FLAG} {p} array 'inputs'", fmt)
    labels, classes = _encode_labels(arrays["labels"], f"{FLAG} {p} array 'labels'", len(inputs))
    mask = None
    if "train_mask" in arrays:
        mask = arrays["train_mask"]
        if mask.dtype != np.bool_ or mask.shape != labels.shape:
            raise InputError(f"{FLAG} {p} array 'train_mask': dtype {mask.dtype} shape {list(mask.shape)}; expected "
                             f"{len(labels)} booleans")
    return TaskData(f"{p} ({len(labels)} labelled images, {len(classes)} classes)", inputs, labels, classes,
                    _checked_mask(mask, p))


def _checked_mask(mask: np.ndarray | None, p: Path) -> np.ndarray | None:
    if mask is not None and (mask.all() or not mask.any()):
        raise InputError(f"{FLAG} {p}: the train/test split puts every example on one side; expected both a "
                         f"train and a test part")
    return mask


def _text_rows(p: Path) -> list[tuple[str, str, str | None]]:
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{FLAG} {p}: not valid UTF-8 (offset {exc.start})") from None
    rows: list[tuple[str, str, str | None]] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if p.suffix.lower() == ".tsv":
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise InputError(f"{FLAG} {p} line {no}: expected 'text<TAB>label' (2 non-empty fields), got "
                                 f"{len(parts)} field(s)")
            if no == 1 and [x.strip().lower() for x in parts] == ["text", "label"]:
                continue
            rows.append((parts[0].strip(), parts[1].strip(), None))
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{FLAG} {p} line {no}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or "label" not in obj \
                or obj.get("split") not in (None, "train", "test"):
            raise InputError(f"{FLAG} {p} line {no}: expected {{\"text\": str, \"label\": ..., optional \"split\": "
                             f"\"train\"|\"test\"}}")
        rows.append((obj["text"], str(obj["label"]), obj.get("split")))
    return rows


def _load_text(p: Path) -> TaskData:
    if p.suffix.lower() not in TEXT_SUFFIXES:
        raise InputError(f"{FLAG} {p}: a text model's task data is a .tsv (text<TAB>label) or a .jsonl "
                         f"({{\"text\": ..., \"label\": ...}} per line)")
    rows = _text_rows(p)
    if not rows:
        raise InputError(f"{FLAG} {p}: no examples")
    labels, classes = _encode_labels([r[1] for r in rows], f"{FLAG} {p}", len(rows))
    splits = [r[2] for r in rows]
    mask = None
    if any(s is not None for s in splits):
        if any(s is None for s in splits):
            raise InputError(f"{FLAG} {p}: some lines have a \"split\" and some do not; give it on every line or none")
        mask = np.array([s == "train" for s in splits])
    return TaskData(f"{p} ({len(rows)} labelled texts, {len(classes)} classes)", [r[0] for r in rows], labels,
                    classes, _checked_mask(mask, p))


def load_task_data(path: str | os.PathLike[str], *, kind: str = "text", image: ImageFormat | None = None
                   ) -> TaskData:
    """Labelled task data for a text model (.tsv / .jsonl) or a vision model (.npz: inputs, labels)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{FLAG} {p}: no such file")
    if not p.is_file():
        raise InputError(f"{FLAG} {p}: not a regular file")
    return _load_npz(p, image or ImageFormat()) if kind == "vision" else _load_text(p)
