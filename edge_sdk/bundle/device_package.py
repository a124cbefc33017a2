"""The device package (edge_sdk/device) as it travels: copied into every bundle as `edge_device/`, and uploaded
content-addressed for device commands that run before any bundle is on the device (see remote/device.py)."""

from __future__ import annotations

import hashlib
import shutil
from functools import lru_cache
from pathlib import Path

PACKAGE_NAME = "edge_device"  # the import name on the device: python3 -m edge_device ...
PACKAGE_SRC = Path(__file__).resolve().parents[1] / "device"


@lru_cache(maxsize=1)
def package_files() -> dict[str, bytes]:
    """{path relative to the package directory (POSIX): content}: every .py file, nothing generated."""
    return {p.relative_to(PACKAGE_SRC).as_posix(): p.read_bytes() for p in sorted(PACKAGE_SRC.rglob("*.py"))
            if "__pycache__" not in p.parts}


def package_hash() -> str:
    """First 16 hex of sha256 over the sorted (path, sha256) list: changes whenever any device file changes."""
    h = hashlib.sha256()
    for rel, data in sorted(package_files().items()):
        h.update(f"{rel}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()[:16]


def copy_package(dest_parent: Path) -> Path:
    """Write the package as `dest_parent/edge_device/`; returns that directory."""
    dest = Path(dest_parent) / PACKAGE_NAME
    if dest.exists():
        shutil.rmtree(dest)
    for rel, data in package_files().items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return dest
