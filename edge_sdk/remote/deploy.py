"""Bundle → Release: upload a verified bundle into a new release directory and switch `current` atomically.

Order of operations, and why:
1. Verify the bundle locally (every sha256) — never ship something already broken. A fleet verifies it once
   (`shippable`) and ships the same verified files to every target.
2. Take the target's deploy lock (lock.py): a device process that holds a flock and runs the release operations
   below, so two deploys to one device never interleave (the second waits, or reports "already being deployed").
   A decoder LLM is then checked against the device's free memory (release operation `memory`): weights + KV cache
   at its context + runtime must fit, or nothing is sent (preflight.py, memory_fit).
3. ONE release operation (prepare) hashes what the device has: files already in this release are skipped,
   identical files in other releases are hard-linked, only the rest is sent — and only when the device has the
   disk space for it. Re-deploying an unchanged bundle therefore sends nothing.
4. Upload over SFTP into releases/.incoming-<id>-<rand>/, a directory nothing else reads. A cut connection or
   Ctrl-C here leaves `current` untouched; the next deploy reuses the complete files from the abandoned upload.
5. ONE release operation (activate) re-hashes every staged file on the device, renames the directory to
   releases/<id>, swaps the `current` symlink with rename(2), records releases.json and prunes old releases.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..bundle import MANIFEST_NAME, Manifest, bundle_id, extract_archive, sha256_file, verify_dir
from ..device.errors import DeviceError
from ..device.release import check_relpath
from ..errors import InfeasibleError, InputError, RemoteError
from ..schemas.release import Release
from .lock import DEFAULT_LOCK_WAIT_S, DeployLock
from .preflight import MemoryNeed, decoder_memory_need, memory_fit, uses_discrete_gpu
from .session import ConnectionLost, Session, connected
from .targets import DeployTarget

log = logging.getLogger(__name__)
ProgressCallback = Callable[[str, int, int], None]
"""on_progress(relpath, bytes_done, bytes_total) during uploads."""
StageCallback = Callable[[str, dict], None]
"""on_stage(stage, info): connecting, locking, waiting (info: who holds the lock), preparing, uploading (info: files,
bytes to send), activating."""


@dataclass(frozen=True)
class ShippableBundle:
    """A bundle verified here (every sha256), ready to go to any number of targets."""

    directory: Path
    manifest: Manifest
    files: dict  # {relpath: (sha256, size)}, manifest.json included
    release_id: str

    @property
    def bytes_total(self) -> int:
        return sum(size for _, size in self.files.values())


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
        yield d, verify_dir(d, shown_as=p)


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


@contextmanager
def shippable(bundle: "str | Path | ShippableBundle") -> Iterator[ShippableBundle]:
    """The bundle verified and described once (a directory, or a .edgepkg extracted for the `with` block)."""
    if isinstance(bundle, ShippableBundle):
        yield bundle
        return
    with open_bundle(bundle) as (bdir, manifest):
        for rel in manifest.files:
            try:
                check_relpath(rel)  # the device checks again; failing here means nothing was sent
            except DeviceError as exc:
                raise InputError(f"{bdir / MANIFEST_NAME}: field 'files': {exc}") from None
        files = {rel: (e.sha256, e.size_bytes) for rel, e in manifest.files.items()}
        files[MANIFEST_NAME] = (sha256_file(bdir / MANIFEST_NAME), (bdir / MANIFEST_NAME).stat().st_size)
        yield ShippableBundle(bdir, manifest, files, bundle_id(manifest.files))


def deploy(bundle: "str | Path | ShippableBundle", target: DeployTarget, *, accept_new_host_key: bool = False,
           registry=None, force: bool = False, on_progress: ProgressCallback | None = None,
           session: Session | None = None, on_stage: StageCallback | None = None,
           before_switch: Callable[[], None] | None = None, lock_wait_s: float = DEFAULT_LOCK_WAIT_S) -> Release:
    """Deploy a bundle directory or .edgepkg to a target; returns the Release (what is `current` now, and costs).

    The bundle's device must be the target's profile (aliases resolved through `registry`, default: the shipped
    profiles + $EDGE_SDK_PROFILES); force=True skips that check. Pass an open `session` to reuse a connection.
    Another deploy to the same device is waited for up to lock_wait_s (then DeployBusy: "already being deployed").
    before_switch() runs right before `current` is switched (a rollout bounds how many devices switch at once).
    """
    t0 = time.monotonic()
    stage = on_stage or (lambda name, info: None)
    with shippable(bundle) as b:
        need = None
        if not force:
            if registry is None:
                from ..profiles import load_registry

                registry = load_registry()
            check_bundle_device(b.manifest, target, registry)
            need = decoder_memory_need(b.manifest)
        stage("connecting", {})
        with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
            stage("locking", {})
            with DeployLock(s, wait_s=lock_wait_s, on_wait=lambda info: stage("waiting", info)) as lock:
                if need is not None:
                    stage("checking memory", {})
                    _check_memory(lock, target, b.manifest, need, registry)
                return _deploy_files(s, lock, target, b, on_progress, stage, before_switch, t0)


def _check_memory(lock: DeployLock, target: DeployTarget, manifest: Manifest, need: MemoryNeed, registry) -> None:
    """A decoder's weights + KV cache at its context + runtime against what the device says is free, before any
    byte is sent (a model that does not fit would be killed by the OOM killer on first use, or swap the board)."""
    profile = registry.resolve(target.profile)[0]
    gpu = uses_discrete_gpu(profile, manifest.plan.runtime.unit)
    problem, warning, _ = memory_fit(need, lock.call("memory", {}), gpu)
    if warning:
        log.warning("deploy to %s: %s", target.name, warning)
    if problem:
        raise InfeasibleError(f"deploy to {target.name}: {problem}; nothing was sent (--force deploys anyway)")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def _deploy_files(s: Session, lock: DeployLock, target: DeployTarget, b: ShippableBundle,
                  on_progress: ProgressCallback | None, stage: StageCallback, before_switch, t0: float) -> Release:
    token, rid, files = secrets.token_hex(4), b.release_id, b.files
    wire = {rel: list(v) for rel, v in files.items()}
    stage("preparing", {})
    prep = lock.call("prepare", {"workdir": target.remote_workdir, "release": rid, "files": wire, "token": token})
    status: dict[str, str] = prep["status"]
    todo = sorted((rel for rel, st in status.items() if st == "missing"), key=lambda r: (r == MANIFEST_NAME, r))
    todo_bytes = sum(files[rel][1] for rel in todo)
    sent_bytes = 0
    t_up = time.monotonic()
    if todo:
        stage("uploading", {"files": len(todo), "bytes": todo_bytes})
        for i, rel in enumerate(todo):
            cb = (lambda done, tot, _rel=rel: on_progress(_rel, done, tot)) if on_progress else None
            try:
                sent_bytes += s.put(b.directory / rel, f"{prep['incoming']}/{rel}", on_progress=cb)
            except RemoteError as exc:
                raise _upload_error(exc, target, prep, i, len(todo), sent_bytes, todo_bytes) from None
    upload_s = time.monotonic() - t_up
    if prep["incoming"] is None and prep["current"] == rid:
        # Already deployed, intact (prepare just re-hashed every file) and current: nothing to switch or record.
        act = {"workdir": prep["workdir"], "release_dir": prep["release_dir"], "previous": rid, "switched": False,
               "verified": len(files), "pruned": []}
    else:
        if before_switch is not None:
            before_switch()
        stage("activating", {})
        try:
            act = lock.call("activate", {
                "workdir": target.remote_workdir, "release": rid, "incoming": prep["incoming"], "files": wire,
                "keep": target.keep_releases, "token": token,
                "meta": {"model": b.manifest.model_name, "device": b.manifest.device, "files_sent": len(todo)}})
        except ConnectionLost as exc:
            raise ConnectionLost(f"{exc}; every file had arrived, so `current` on {target.name} is either still "
                                 f"{prep['current'] or 'unset'} or already {rid} — re-run the deploy to finish "
                                 f"(nothing is sent again)") from None
    n_linked = sum(1 for st in status.values() if st == "linked")
    n_present = sum(1 for st in status.values() if st == "present")
    return Release(
        target=target.name, endpoint=str(s.endpoint), release_id=rid, path=act["release_dir"],
        current_link=f"{act['workdir']}/current", previous_release=act["previous"], switched=act["switched"],
        model_name=b.manifest.model_name, device=b.manifest.device, files_total=len(files), files_sent=len(todo),
        files_linked=n_linked, files_present=n_present, bytes_sent=sent_bytes,
        bytes_total=b.bytes_total, verified_files=act["verified"], pruned=act["pruned"],
        upload_seconds=round(upload_s, 3),
        throughput_mb_s=round(sent_bytes / upload_s / 1e6, 1) if sent_bytes and upload_s > 0 else None,
        seconds=round(time.monotonic() - t0, 3), host_key_accepted=s.accepted_host_key)


def _upload_error(exc: RemoteError, target: DeployTarget, prep: dict, done_files: int, n_files: int,
                  sent: int, total: int) -> RemoteError:
    """How far the upload got, why it stopped, that `current` is untouched and that re-running resumes."""
    sent += getattr(exc, "bytes_done", 0)
    room = ""
    if not isinstance(exc, ConnectionLost) and prep.get("free_bytes") is not None:
        room = f" (the device had {_mb(prep['free_bytes'])} free for it)"
    cls = ConnectionLost if isinstance(exc, ConnectionLost) else RemoteError
    return cls(f"deploy to {target.name} stopped after {done_files} of {n_files} files, {_mb(sent)} of "
               f"{_mb(total)} sent{room}: {exc}; `current` on {target.name} still points at "
               f"{prep.get('current') or 'nothing'} — re-run the deploy to resume (files already on the device "
               f"are not sent again)")
