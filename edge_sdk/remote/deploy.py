"""Bundle → Release: upload a verified bundle into a new release directory and switch `current` atomically.

Order of operations, and why:
1. Verify the bundle locally (every sha256) — never ship something already broken.
2. ONE remote command (edge_device release prepare) hashes what the device has: files already in this release are
   skipped, identical files in other releases are hard-linked, only the rest is sent. Re-deploying an unchanged
   bundle therefore sends nothing.
3. Upload over SFTP into releases/.incoming-<id>-<rand>/, a directory nothing else reads. A cut connection or
   Ctrl-C here leaves `current` untouched; the next deploy reuses the complete files from the abandoned upload.
4. ONE remote command (activate) re-hashes every staged file on the device, renames the directory to
   releases/<id>, swaps the `current` symlink with rename(2), records releases.json and prunes old releases.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..bundle import MANIFEST_NAME, Manifest, bundle_id, extract_archive, sha256_file, verify_dir
from ..device.errors import DeviceError
from ..device.release import check_relpath
from ..errors import InputError, RemoteError
from ..schemas.release import Release
from .device import release_op
from .session import Session, connected
from .targets import DeployTarget

ProgressCallback = Callable[[str, int, int], None]
"""on_progress(relpath, bytes_done, bytes_total) during uploads."""


@contextmanager
def open_bundle(path: str | Path) -> Iterator[tuple[Path, Manifest]]:
    """A verified bundle directory: the directory itself, or a `.edgepkg` extracted (safely) to a temp dir."""
    p = Path(path)
    if p.is_dir():
        yield p, verify_dir(p)
        return
    if not p.exists():
        raise InputError(f"{p}: bundle not found (expected a bundle directory or a .edgepkg archive)")
    with tempfile.TemporaryDirectory(prefix="edge-sdk-deploy-") as tmp:
        d = extract_archive(p, Path(tmp) / "bundle")
        yield d, verify_dir(d)


def check_bundle_device(manifest: Manifest, target: DeployTarget, registry) -> None:
    """Refuse a bundle built for another device profile than the one the target is (aliases resolved)."""
    want = registry.resolve(target.profile)[0].name
    try:
        have = registry.resolve(manifest.device)[0].name
    except InputError:
        have = manifest.device
    if have != want:
        raise InputError(f"bundle was built for device '{manifest.device}' but target '{target.name}' is profile "
                         f"'{target.profile}'; rebuild for '{want}' or pass --force to deploy anyway")


def deploy(bundle: str | Path, target: DeployTarget, *, accept_new_host_key: bool = False, registry=None,
           force: bool = False, on_progress: ProgressCallback | None = None,
           session: Session | None = None) -> Release:
    """Deploy a bundle directory or .edgepkg to a target; returns the Release (what is `current` now, and costs).

    The bundle's device must be the target's profile (aliases resolved through `registry`, default: the shipped
    profiles + $EDGE_SDK_PROFILES); force=True skips that check. Pass an open `session` to reuse a connection.
    """
    t0 = time.monotonic()
    with open_bundle(bundle) as (bdir, manifest):
        if not force:
            if registry is None:
                from ..profiles import load_registry

                registry = load_registry()
            check_bundle_device(manifest, target, registry)
        for rel in manifest.files:
            try:
                check_relpath(rel)  # the device checks again; failing here means nothing was sent
            except DeviceError as exc:
                raise InputError(f"{bdir / MANIFEST_NAME}: field 'files': {exc}") from None
        files = {rel: (e.sha256, e.size_bytes) for rel, e in manifest.files.items()}
        files[MANIFEST_NAME] = (sha256_file(bdir / MANIFEST_NAME), (bdir / MANIFEST_NAME).stat().st_size)
        rid = bundle_id(manifest.files)
        with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
            return _deploy_files(s, target, bdir, manifest, files, rid, on_progress, t0)


def _deploy_files(s: Session, target: DeployTarget, bdir: Path, manifest: Manifest, files: dict, rid: str,
                  on_progress: ProgressCallback | None, t0: float) -> Release:
    token = secrets.token_hex(4)
    wire = {rel: list(v) for rel, v in files.items()}
    prep = release_op(s, "prepare", {"workdir": target.remote_workdir, "release": rid, "files": wire, "token": token})
    status: dict[str, str] = prep["status"]
    todo = sorted((rel for rel, st in status.items() if st == "missing"), key=lambda r: (r == MANIFEST_NAME, r))
    sent_bytes = 0
    t_up = time.monotonic()
    if todo:
        incoming = prep["incoming"]
        for rel in todo:
            cb = (lambda done, tot, _rel=rel: on_progress(_rel, done, tot)) if on_progress else None
            try:
                sent_bytes += s.put(bdir / rel, f"{incoming}/{rel}", on_progress=cb)
            except RemoteError as exc:
                cur = prep.get("current")
                raise RemoteError(f"{exc}; `current` on {target.name} still points at {cur or 'nothing'} — rerun "
                                  f"the deploy to finish (files already uploaded are reused)") from None
    upload_s = time.monotonic() - t_up
    if prep["incoming"] is None and prep["current"] == rid:
        # Already deployed, intact (prepare just re-hashed every file) and current: nothing to switch or record.
        act = {"workdir": prep["workdir"], "release_dir": prep["release_dir"], "previous": rid, "switched": False,
               "verified": len(files), "pruned": []}
    else:
        act = release_op(s, "activate", {
            "workdir": target.remote_workdir, "release": rid, "incoming": prep["incoming"], "files": wire,
            "keep": target.keep_releases, "token": token,
            "meta": {"model": manifest.model_name, "device": manifest.device, "files_sent": len(todo)}})
    n_linked = sum(1 for st in status.values() if st == "linked")
    n_present = sum(1 for st in status.values() if st == "present")
    return Release(
        target=target.name, endpoint=str(s.endpoint), release_id=rid, path=act["release_dir"],
        current_link=f"{act['workdir']}/current", previous_release=act["previous"], switched=act["switched"],
        model_name=manifest.model_name, device=manifest.device, files_total=len(files), files_sent=len(todo),
        files_linked=n_linked, files_present=n_present, bytes_sent=sent_bytes,
        bytes_total=sum(size for _, size in files.values()), verified_files=act["verified"], pruned=act["pruned"],
        upload_seconds=round(upload_s, 3),
        throughput_mb_s=round(sent_bytes / upload_s / 1e6, 1) if sent_bytes and upload_s > 0 else None,
        seconds=round(time.monotonic() - t0, 3), host_key_accepted=s.accepted_host_key)
