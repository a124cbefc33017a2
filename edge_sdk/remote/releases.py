"""After a deploy: roll `current` back, re-verify a release on the device, list what is there.

Each is one device release operation (edge_device release OP) under the device-side lock; a rollback also takes the
deploy lock (lock.py), so it waits for a deploy in progress instead of switching under it.
"""

from __future__ import annotations

import secrets
import time

from ..schemas.release import ReleaseCheck, Rollback
from .device import release_op
from .lock import DEFAULT_LOCK_WAIT_S, DeployLock, holder_name
from .session import Session, connected
from .targets import DeployTarget


def rollback(target: DeployTarget, *, to: str | None = None, accept_new_host_key: bool = False,
             session: Session | None = None, lock_wait_s: float = DEFAULT_LOCK_WAIT_S) -> Rollback:
    """Switch `current` back to the release deployed before it (or to release `to`), after re-verifying it."""
    t0 = time.monotonic()
    with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
        with DeployLock(s, wait_s=lock_wait_s, holder=holder_name("edge-sdk rollback")) as lock:
            out = lock.call("rollback", {"workdir": target.remote_workdir, "to": to, "token": secrets.token_hex(4)})
    return Rollback(target=target.name, endpoint=str(s.endpoint), release_id=out["current"], path=out["release_dir"],
                    previous_release=out["previous"], seconds=round(time.monotonic() - t0, 3))


def verify_release(target: DeployTarget, *, release: str | None = None, accept_new_host_key: bool = False,
                   session: Session | None = None) -> ReleaseCheck:
    """Re-hash a release (default: current) on the device against its manifest; ok=False lists what differs."""
    with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
        out = release_op(s, "verify", {"workdir": target.remote_workdir, "release": release})
    return ReleaseCheck(target=target.name, release_id=out["release"], path=out["release_dir"], ok=out["ok"],
                        files=out.get("files", 0), mismatched=out["mismatched"], missing=out["missing"],
                        extra=out["extra"], id_matches=out["id_matches"], error=out.get("error"))


def release_status(target: DeployTarget, *, accept_new_host_key: bool = False, session: Session | None = None) -> dict:
    """current, the releases on the device, and the recent deploy/rollback events (plain dict from the device)."""
    with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
        return release_op(s, "status", {"workdir": target.remote_workdir})
