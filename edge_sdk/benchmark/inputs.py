"""How benchmark inputs are stored in a bundle: the sample-inputs .npz the build writes and the runner reads.

Keys are "<kind>/<input name>" ("real/input_ids", "padded/attention_mask"); kind "real" holds sentences at their
real token lengths (padded only to the longest of them), kind "padded" holds them padded to the plan's seq_len.
Axis 0 is the batch and every array of a kind has the same rows; the runner tiles rows to make larger batches.
The device side reads it with the same convention (edge_sdk/device/inputs.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import InputError

INPUT_KINDS = ("real", "padded")


def _flatten(arrays: Mapping) -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if isinstance(value, Mapping):  # {"real": {"input_ids": ...}}
            for name, arr in value.items():
                flat[f"{key}/{name}"] = arr
        else:
            flat[str(key)] = value
    return flat


def save_sample_inputs(path: str | Path, arrays: Mapping) -> Path:
    """Write the .npz atomically. `arrays`: {"real/input_ids": array, ...} or {"real": {"input_ids": array}}."""
    flat = _flatten(arrays)
    if not flat:
        raise InputError("sample inputs: no arrays given")
    rows: dict[str, dict[str, int]] = {}
    out: dict[str, np.ndarray] = {}
    for key, value in flat.items():
        kind, sep, name = key.partition("/")
        if not sep or not name or "/" in name:
            raise InputError(f"sample inputs: key {key!r} is not '<kind>/<input name>'")
        if kind not in INPUT_KINDS:
            raise InputError(f"sample inputs: key {key!r}: kind must be one of {', '.join(INPUT_KINDS)}")
        arr = np.asarray(value)
        if arr.ndim < 1 or arr.shape[0] == 0 or arr.dtype.kind not in "biuf":
            raise InputError(f"sample inputs: {key!r} must be a non-empty numeric array with the batch on axis 0 "
                             f"(got dtype {arr.dtype}, shape {list(arr.shape)})")
        rows.setdefault(kind, {})[name] = arr.shape[0]
        out[key] = arr
    for kind, by_name in rows.items():
        if len(set(by_name.values())) != 1:
            raise InputError(f"sample inputs: the {kind!r} arrays need the same number of rows; got {by_name}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **out)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
