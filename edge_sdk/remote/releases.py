"""After a deploy: roll `current` back, re-verify a release on the device, list what is there.

Each is one device_release.py command under the device-side lock, so it cannot interleave with a deploy.
"""

from __future__ import annotations

import secrets
import time

from ..schemas.release import ReleaseCheck, Rollback
from .session import Session
from .targets import DeployTarget


def rollback(target: DeployTarget, *, to: str | None = None, accept_new_host_key: bool = False,
             session: Session | None = None) -> Rollback:
    """Switch `current` back to the release deployed before it (or to release `to`), after re-verifying it."""
    t0 = time.monotonic()
    s = session or Session(target, accept_new_host_key=accept_new_host_key)
    try:
        out = s.connect().device_call("device_release", "rollback", {
            "workdir": target.remote_workdir, "to": to, "token": secrets.token_hex(4)})
    finally:
        if session is None:
            s.close()
    return Rollback(target=target.name, endpoint=str(s.endpoint), release_id=out["current"], path=out["release_dir"],
                    previous_release=out["previous"], seconds=round(time.monotonic() - t0, 3))


def verify_release(target: DeployTarget, *, release: str | None = None, accept_new_host_key: bool = False,
                   session: Session | None = None) -> ReleaseCheck:
    """Re-hash a release (default: current) on the device against its manifest; ok=False lists what differs."""
    s = session or Session(target, accept_new_host_key=accept_new_host_key)
    try:
        out = s.connect().device_call("device_release", "verify", {"workdir": target.remote_workdir,
                                                                   "release": release})
    finally:
        if session is None:
            s.close()
    return ReleaseCheck(target=target.name, release_id=out["release"], path=out["release_dir"], ok=out["ok"],
                        files=out.get("files", 0), mismatched=out["mismatched"], missing=out["missing"],
                        extra=out["extra"], id_matches=out["id_matches"], error=out.get("error"))


def release_status(target: DeployTarget, *, accept_new_host_key: bool = False, session: Session | None = None) -> dict:
    """current, the releases on the device, and the recent deploy/rollback events (plain dict from the device)."""
    s = session or Session(target, accept_new_host_key=accept_new_host_key)
    try:
        return s.connect().device_call("device_release", "status", {"workdir": target.remote_workdir})
    finally:
        if session is None:
            s.close()
