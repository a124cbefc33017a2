"""Safe extraction of `.edgepkg` archives: checked before anything is written.

tarfile's `data` filter (Python ≥ 3.11.4) already blocks absolute paths, `..` and links escaping the destination;
we check first ourselves anyway so the user gets one clear message naming the bad member, and we also refuse
every link and special file (a bundle only ever holds regular files) and archives whose content is far larger
than the manifest inside them claims (a decompression bomb).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..schemas.bundle import MANIFEST_NAME

# Slack over what the manifest claims: the manifest itself plus tar padding is tiny; anything beyond is suspicious.
SIZE_SLACK_BYTES = 4 << 20
SIZE_SLACK_RATIO = 1.05
MAX_MANIFEST_BYTES = 16 << 20


def _check_member(archive: Path, m: tarfile.TarInfo) -> None:
    name = m.name
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"{archive}: member '{name}' has an absolute path; refusing to extract")
    if ".." in p.parts:
        raise InputError(f"{archive}: member '{name}' contains '..'; refusing to extract")
    if m.issym() or m.islnk():
        raise InputError(f"{archive}: member '{name}' is a link (to '{m.linkname}'); bundles hold regular files only")
    if not (m.isfile() or m.isdir()):
        raise InputError(f"{archive}: member '{name}' is a special file; bundles hold regular files only")


def inspect_archive(archive: str | Path) -> tuple[list[tarfile.TarInfo], dict]:
    """Read and check all member headers and the manifest without extracting anything."""
    path = Path(archive)
    if not path.is_file():
        raise InputError(f"{path}: archive not found")
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{path}: not a readable .edgepkg archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"{path}: corrupt archive ({exc})") from None
        for m in members:
            _check_member(path, m)
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"{path}: duplicate members {dup}")
        man = next((m for m in members if m.name == MANIFEST_NAME), None)
        if man is None:
            raise InputError(f"{path}: no {MANIFEST_NAME} at the top of the archive; not an edge-sdk bundle")
        if man.size > MAX_MANIFEST_BYTES:
            raise InputError(f"{path}: {MANIFEST_NAME} is {man.size} bytes; expected < {MAX_MANIFEST_BYTES}")
        try:
            manifest = json.loads(tar.extractfile(man).read())  # type: ignore[union-attr]
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: {MANIFEST_NAME} is not JSON ({exc})") from None
    claimed = sum(int(f.get("size_bytes", 0)) for f in (manifest.get("files") or {}).values()) \
        if isinstance(manifest, dict) else 0
    actual = sum(m.size for m in members if m.isfile() and m.name != MANIFEST_NAME)
    if actual > claimed * SIZE_SLACK_RATIO + SIZE_SLACK_BYTES:
        raise InputError(f"{path}: archive content is {actual} bytes but its manifest claims {claimed}; "
                         f"refusing to extract (expected at most {int(claimed * SIZE_SLACK_RATIO + SIZE_SLACK_BYTES)})")
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
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
