"""Checking a bundle: manifest schema, every file's size and sha256, no unlisted files, no links.

A bundle holds regular files only, whether it is a directory or an archive: a symlink in a bundle directory would
ship (or let a verifier hash) whatever it points at, so it is refused like a link member of an archive is.
Messages name the path the user gave (`shown_as`), never a temporary copy or extraction directory.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from pydantic import ValidationError

from ..errors import format_validation_error
from .archive import BundleError, extract_archive
from .hashing import sha256_file
from ..schemas.bundle import MANIFEST_NAME, Manifest

__all__ = ["BundleError", "check_regular_files", "read_manifest", "verify_bundle", "verify_dir"]


def read_manifest(bundle_dir: str | Path, *, shown_as: str | Path | None = None) -> Manifest:
    d = Path(bundle_dir)
    name = Path(shown_as) if shown_as is not None else d
    mpath = d / MANIFEST_NAME
    if not d.is_dir():
        raise BundleError(f"{name}: bundle directory not found")
    if mpath.is_symlink():
        raise BundleError(f"{name / MANIFEST_NAME}: is a symbolic link; bundles hold regular files only")
    if not mpath.is_file():
        raise BundleError(f"{name}: no {MANIFEST_NAME}; not an edge-sdk bundle")
    try:
        return Manifest.model_validate_json(mpath.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise BundleError(format_validation_error(str(name / MANIFEST_NAME), exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{name / MANIFEST_NAME}: not valid JSON ({exc})") from None


def check_regular_files(bundle_dir: str | Path, *, shown_as: str | Path | None = None) -> None:
    """Refuse symbolic links and special files anywhere inside a bundle directory (links are not followed)."""
    d = Path(bundle_dir)
    name = Path(shown_as) if shown_as is not None else d
    bad = []
    for root, dirs, files in os.walk(d, followlinks=False):
        for entry in dirs + files:
            p = Path(root) / entry
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                bad.append(f"'{p.relative_to(d).as_posix()}' is a symbolic link (to '{os.readlink(p)}')")
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                bad.append(f"'{p.relative_to(d).as_posix()}' is a special file")
    if bad:
        raise BundleError(f"{name}: {'; '.join(sorted(bad)[:5])}" + (f" (+{len(bad) - 5} more)" if len(bad) > 5
                                                                      else "")
                          + "; bundles hold regular files only (copy the file in instead of linking it)")


def verify_dir(bundle_dir: str | Path, *, shown_as: str | Path | None = None) -> Manifest:
    """Check a bundle directory; `shown_as` is the path messages name (the user's, when `bundle_dir` is a copy)."""
    d = Path(bundle_dir)
    name = Path(shown_as) if shown_as is not None else d
    manifest = read_manifest(d, shown_as=name)
    check_regular_files(d, shown_as=name)
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
        raise BundleError(f"{name}: bundle verification failed: {'; '.join(problems[:5])}"
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
        return verify_dir(extract_archive(p, Path(tmp) / "bundle"), shown_as=p)
