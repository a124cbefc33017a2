"""Checking a bundle: manifest schema, every file's size and sha256, no unlisted files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pydantic import ValidationError

from ..errors import InputError, format_validation_error
from .archive import extract_archive
from .hashing import sha256_file
from ..schemas.bundle import MANIFEST_NAME, Manifest


class BundleError(InputError):
    """The bundle is malformed or was modified (exit 2)."""


def read_manifest(bundle_dir: str | Path) -> Manifest:
    d = Path(bundle_dir)
    mpath = d / MANIFEST_NAME
    if not d.is_dir():
        raise BundleError(f"{d}: bundle directory not found")
    if not mpath.is_file():
        raise BundleError(f"{d}: no {MANIFEST_NAME}; not an edge-sdk bundle")
    try:
        return Manifest.model_validate_json(mpath.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise BundleError(format_validation_error(str(mpath), exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from None


def verify_dir(bundle_dir: str | Path) -> Manifest:
    d = Path(bundle_dir)
    manifest = read_manifest(d)
    problems = []
    for rel, entry in sorted(manifest.files.items()):
        f = d / rel
        if not f.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = f.stat().st_size
        if size != entry.size_bytes:
            problems.append(f"{rel}: size {size} != manifest {entry.size_bytes}")
            continue
        digest = sha256_file(f)
        if digest != entry.sha256:
            problems.append(f"{rel}: sha256 {digest[:12]}… != manifest {entry.sha256[:12]}…")
    listed = set(manifest.files) | {MANIFEST_NAME}
    extra = sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()
                   and p.relative_to(d).as_posix() not in listed)
    if extra:
        problems.append(f"files not in the manifest: {', '.join(extra[:5])}")
    if problems:
        raise BundleError(f"{d}: bundle verification failed: {'; '.join(problems[:5])}"
                          + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
    return manifest


def verify_bundle(path: str | Path) -> Manifest:
    """A bundle directory or a `.edgepkg` archive (checked for unsafe members, then extracted to a temp dir)."""
    p = Path(path)
    if p.is_dir():
        return verify_dir(p)
    if not p.exists():
        raise BundleError(f"{p}: bundle not found")
    with tempfile.TemporaryDirectory(prefix="edge-sdk-verify-") as tmp:
        return verify_dir(extract_archive(p, Path(tmp) / "bundle"))
