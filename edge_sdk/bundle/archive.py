"""Safe extraction of `.edgepkg` archives: checked before anything is written.

tarfile's `data` filter (Python ≥ 3.11.4) already blocks absolute paths, `..` and links escaping the destination;
we check first ourselves anyway so the user gets one clear message naming the bad member, and we also refuse
every link and special file (a bundle only ever holds regular files), a manifest that is not a valid Manifest, and
members the manifest does not list or lists at another size (which also refuses a decompression bomb).

Members may be named `manifest.json` or `./manifest.json` (what `tar -C DIR -czf X .` writes): names are compared
in normal form, and extraction writes both to the same place.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from ..errors import InputError, format_validation_error
from ..schemas.bundle import MANIFEST_NAME, Manifest

MAX_MANIFEST_BYTES = 16 << 20


class BundleError(InputError):
    """The bundle is malformed or was modified (exit 2)."""


def member_path(name: str) -> str:
    """A member's name in normal form: `./a//b` → `a/b`; the archive root (`.`, `./`) → ``."""
    norm = PurePosixPath(name).as_posix()
    return "" if norm == "." else norm


def _check_member(archive: Path, m: tarfile.TarInfo) -> None:
    name = m.name
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"{archive}: member '{name}' has an absolute path; refusing to extract")
    if ".." in p.parts:
        raise BundleError(f"{archive}: member '{name}' contains '..'; refusing to extract")
    if m.issym() or m.islnk():
        raise BundleError(f"{archive}: member '{name}' is a link (to '{m.linkname}'); bundles hold regular files only")
    if not (m.isfile() or m.isdir()):
        raise BundleError(f"{archive}: member '{name}' is a special file; bundles hold regular files only")
    if not member_path(name) and not m.isdir():
        raise BundleError(f"{archive}: member '{name}' is not a file name; refusing to extract")


def _parse_manifest(path: Path, raw: bytes) -> Manifest:
    where = f"{path}: {MANIFEST_NAME}"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{where}: expected a JSON object with the Manifest fields, got {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise BundleError(format_validation_error(where, exc)) from None


def _check_listing(path: Path, files: dict[str, int], manifest: Manifest) -> None:
    """Every regular member is listed at its size, and every listed file is there: checked on the headers, so a
    bad archive is refused before a byte of it is written."""
    problems = []
    for rel, size in sorted(files.items()):
        entry = manifest.files.get(rel)
        if entry is None:
            problems.append(f"{rel}: not in the manifest")
        elif entry.size_bytes != size:
            problems.append(f"{rel}: size {size} != manifest {entry.size_bytes}")
    problems += [f"{rel}: missing" for rel in sorted(set(manifest.files) - set(files))]
    if problems:
        raise BundleError(f"{path}: bundle verification failed: {'; '.join(problems[:5])}"
                          + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))


def inspect_archive(archive: str | Path) -> tuple[list[tarfile.TarInfo], Manifest]:
    """Read and check all member headers and the manifest without extracting anything."""
    path = Path(archive)
    if not path.is_file():
        raise BundleError(f"{path}: archive not found")
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path}: not a readable .edgepkg archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"{path}: corrupt archive ({exc})") from None
        for m in members:
            _check_member(path, m)
        names = [member_path(m.name) for m in members if member_path(m.name)]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise BundleError(f"{path}: duplicate members {dup}")
        man = next((m for m in members if member_path(m.name) == MANIFEST_NAME), None)
        if man is None or not man.isfile():
            raise BundleError(f"{path}: no {MANIFEST_NAME} at the top of the archive; not an edge-sdk bundle")
        if man.size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{path}: {MANIFEST_NAME} is {man.size} bytes; expected < {MAX_MANIFEST_BYTES}")
        try:
            raw = tar.extractfile(man).read()  # type: ignore[union-attr]
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"{path}: corrupt archive ({exc})") from None
    manifest = _parse_manifest(path, raw)
    _check_listing(path, {member_path(m.name): m.size for m in members
                          if m.isfile() and member_path(m.name) != MANIFEST_NAME}, manifest)
    return members, manifest


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Check, then extract into a temp dir beside `dest` and rename it into place. Returns `dest`."""
    path = Path(archive)
    inspect_archive(path)
    out = Path(dest)
    if out.exists():
        raise InputError(f"{out}: already exists; choose an empty destination")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with tarfile.open(path, "r:*") as tar:  # the root member (`.`) is skipped: its mode is not the archive's to set
            tar.extractall(tmp, members=[m for m in tar.getmembers() if member_path(m.name)], filter="data")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
