"""sha256 of files and of a whole bundle (its id)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def bundle_id(files: dict) -> str:
    """Content id of a bundle: sha256 over the sorted (path, sha256) list, first 16 hex digits.
    Two bundles with the same files have the same id, whatever their creation time."""
    h = hashlib.sha256()
    for rel in sorted(files):
        entry = files[rel]
        digest = entry.sha256 if hasattr(entry, "sha256") else entry["sha256"]
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()[:16]
