"""Writing a bundle directory atomically (temp dir, then rename) and packing it into a `.edgepkg` archive."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..artifacts import check_output_path
from ..errors import InputError
from .device_package import copy_package
from .hashing import sha256_file
from .verify import check_regular_files
from ..schemas.bundle import MANIFEST_NAME, FileEntry, Manifest


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished temp dir into place; an existing bundle at `final` is replaced only after success."""
    if final.exists():
        if not (final / MANIFEST_NAME).exists() and any(final.iterdir()):
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(f"{final}: exists and is not a bundle (no {MANIFEST_NAME}); refusing to overwrite")
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def check_bundle_output(out_dir: str | Path, *, archive: bool = True, flag: str = "-o") -> Path:
    """Refuse, before a build starts, an output that `write_bundle`/`pack_archive` could not write at its end: a
    file, a path below a file, a non-empty directory that is not a bundle, or an `.edgepkg` path that is a directory."""
    out = check_output_path(out_dir, kind="dir", flag=flag)
    if out.name in ("", ".", ".."):
        raise InputError(f"{flag} {out}: expected a path naming the bundle directory (e.g. out/bundle), not '{out}'")
    if out.is_dir() and not (out / MANIFEST_NAME).exists() and any(out.iterdir()):
        raise InputError(f"{flag} {out}: exists and is not a bundle (no {MANIFEST_NAME}); refusing to overwrite it "
                         f"(expected a new or empty directory, or an earlier bundle)")
    arc = out.with_name(out.name + ".edgepkg")
    if archive and arc.is_dir():
        raise InputError(f"{flag} {out}: the archive path beside it, {arc}, is a directory; move it or pass "
                         f"--no-archive")
    return out


def _normal_permissions(root: Path) -> None:
    """mkdtemp/mkstemp create 0700/0600; a bundle is ordinary readable data (0755 dirs, 0644 files)."""
    os.chmod(root, 0o755)
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def write_bundle(out_dir: str | Path, files: dict[str, Path], manifest_fields: dict) -> Manifest:
    """Copy `files` (bundle-relative POSIX path → source file) plus the device package (`edge_device/`) into a new
    bundle.

    `manifest_fields` are the Manifest fields except `files`; hashes are computed here from what was written.
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for rel, src in files.items():
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        copy_package(tmp)
        entries: dict[str, FileEntry] = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file() and p.name != MANIFEST_NAME:
                rel = p.relative_to(tmp).as_posix()
                entries[rel] = FileEntry(sha256=sha256_file(p), size_bytes=p.stat().st_size)
        manifest = Manifest(files=entries, **manifest_fields)
        (tmp / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _normal_permissions(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def pack_archive(bundle_dir: str | Path, archive: str | Path) -> Path:
    """A single-file `.edgepkg`: a gzip'd tar of the bundle, manifest first, regular files only."""
    src = Path(bundle_dir)
    dst = Path(archive)
    check_regular_files(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            names = [MANIFEST_NAME] + sorted(p.relative_to(src).as_posix() for p in src.rglob("*")
                                             if p.is_file() and p.name != MANIFEST_NAME)
            for rel in names:
                info = tar.gettarinfo(str(src / rel), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(src / rel, "rb") as f:
                    tar.addfile(info, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst
