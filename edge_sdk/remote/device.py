"""Starting device-side code from the host: ONE way for every device command.

Every device command — bench, release operations (prepare/activate/rollback/verify/status/hash), kill, probe — is
`<target python> -B -m edge_device COMMAND ARGS...`, built from an argv list (every word quoted by
session.remote_command) and run in a directory that holds the package:
- a bundle's own `edge_device/` (bench runs the code that was built and verified with the bundle);
- otherwise the host's package, uploaded content-addressed to `<workdir>/.edge_device/<hash>/edge_device/` the
  first time a command finds it missing (a few KB, written to a temp dir and renamed into place, so a cut upload
  never leaves a half package that looks complete). Later commands, from any host with the same edge-sdk, reuse it.

`-B`: no __pycache__ is written into releases, which are immutable and verified file by file.

Every function takes an open remote.Session (`session`; not imported here: the session calls kill_tree at its
deadlines, and an import back would make a cycle).
"""

from __future__ import annotations

import json
import posixpath
import secrets
import shlex
import socket

from ..bundle.device_package import PACKAGE_NAME, package_files, package_hash
from ..errors import RemoteError
from .command import EXIT_NO_DIR, remote_command

PACKAGE_DIR = ".edge_device"


def device_argv(python: str, command: str, *args: object) -> list[str]:
    return [python, "-B", "-m", PACKAGE_NAME, command, *(str(a) for a in args)]


def package_root(session) -> str:
    """Where the host's device package lives on the target (a directory holding `edge_device/`)."""
    return posixpath.join(session.target.remote_workdir, PACKAGE_DIR, package_hash())


def upload_dir(session, root: str, files: dict, *, what: str, marker: str) -> str:
    """A content-addressed directory on the device (`root` names its content): nothing is sent when `root/marker`
    is there; otherwise every file ({relative path: bytes or a local Path}) goes to a temp dir that is renamed into
    place, so a cut upload never leaves a half directory that looks complete."""
    if _exists(session, posixpath.join(root, marker)):
        return root
    tmp = f"{root}.tmp-{secrets.token_hex(4)}"
    dirs = sorted({posixpath.dirname(posixpath.join(tmp, rel)) for rel in files})
    session.run(["mkdir", "-p", "--", *dirs], check=True, timeout=60)
    try:
        sftp = session.sftp
        for rel, data in files.items():
            if isinstance(data, bytes):
                with sftp.open(posixpath.join(tmp, rel), "wb") as f:
                    f.write(data)
            else:
                session.put(data, posixpath.join(tmp, rel))
        try:
            sftp.rename(tmp, root)
        except OSError:
            if not _exists(session, posixpath.join(root, marker)):  # else another host put the same one there first
                raise
    except (OSError, EOFError) as exc:
        raise RemoteError(f"cannot upload the {what} to {session.endpoint.hostname}:{root}: "
                          f"{exc or type(exc).__name__}") from None
    finally:
        session.run(["rm", "-rf", "--", tmp], timeout=60)
    return root


def upload_package(session) -> str:
    """Put the host's device package on the device; returns its root."""
    files = {posixpath.join(PACKAGE_NAME, rel): data for rel, data in package_files().items()}
    return upload_dir(session, package_root(session), files, what="device package",
                      marker=posixpath.join(PACKAGE_NAME, "__main__.py"))


def _exists(session, path: str) -> bool:
    try:
        session.sftp.stat(path)
        return True
    except (OSError, EOFError):
        return False


def _has_package(session, root: str) -> bool:
    return _exists(session, posixpath.join(root, PACKAGE_NAME, "__main__.py"))


def run_device(session, command: str, *args: object, bundle_dir: str | None = None,
               stdin: bytes | None = None, timeout: float | None = None, on_line=None):
    """Run `python3 -m edge_device COMMAND ARGS...` on the target; returns Session.run's RunResult.

    bundle_dir: run the bundle's own package from that directory (rc 125 when it does not exist). Without it the
    host's package runs, uploaded first when the device does not have it yet.
    """
    argv = device_argv(session.target.python, command, *args)
    if bundle_dir is not None:
        return session.run(argv, cwd=bundle_dir, stdin=stdin, timeout=timeout, on_line=on_line)
    root = package_root(session)
    res = session.run(argv, cwd=root, stdin=stdin, timeout=timeout, on_line=on_line)
    if res.rc == EXIT_NO_DIR:
        upload_package(session)
        res = session.run(argv, cwd=root, stdin=stdin, timeout=timeout, on_line=on_line)
    return res


def call_json(session, command: str, *args: object, payload: dict | None = None,
              timeout: float | None = None) -> dict:
    """A device command that answers one JSON line (release operations, probe); {"error": ...} → RemoteError."""
    t = session.target
    res = run_device(session, command, *args, stdin=json.dumps(payload).encode() if payload is not None else None,
                     timeout=timeout)
    what = " ".join(str(a) for a in args[:1]) or command
    if res.rc == 127:
        raise RemoteError(f"'{t.python}' not found on {session.endpoint} (target field 'python')")
    lines = res.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise RemoteError(f"{command} {what} failed on {t.name} (exit {res.rc}): {tail[:300]}") from None
    if isinstance(out, dict) and "error" in out:
        raise RemoteError(f"{what} on {t.name}: {out['error']}")
    return out


def release_op(session, op: str, payload: dict, *, timeout: float | None = None) -> dict:
    """One release operation under the device-side lock (see edge_sdk/device/release.py)."""
    return call_json(session, "release", op, payload=payload, timeout=timeout)


def sha256_remote(session, remote_paths: list[str]) -> dict[str, str | None]:
    """sha256 of each remote file in ONE command ({path: hex, or None when missing}); relative to the home."""
    return release_op(session, "hash", {"paths": list(remote_paths)})["sha256"]


def kill_tree(session, pid: int | None, grace_s: float) -> int:
    """Kill pid's session/process group and descendants on the device (edge_device kill); returns a count.

    Runs on a channel of its own, not through Session.run (whose deadline handling calls this). Should the package
    be unavailable, a plain `kill -KILL` of the group and the process is the fallback.
    """
    if pid is None:
        return 0
    root = package_root(session)
    try:
        if not _has_package(session, root):
            upload_package(session)
    except RemoteError:
        pass  # the fallback below still kills the command itself
    cmd = (remote_command(device_argv(session.target.python, "kill", pid, grace_s), cwd=root) + " 2>/dev/null || "
           + shlex.join(["kill", "-KILL", "--", f"-{pid}", str(pid)]))
    chan = session.transport.open_session(timeout=session.target.connect_timeout_s)
    chan.exec_command(cmd)
    chan.settimeout(grace_s + 30)
    data = b""
    try:
        while True:
            b = chan.recv(4096)
            if not b:
                break
            data += b
    except socket.timeout:
        pass
    chan.close()
    try:
        return int(data.split()[-1])
    except (ValueError, IndexError):
        return 1
