"""Device-side locks: one deploy at a time per workdir (`release hold`), one release operation at a time (OpLock).

Why a held process and not a lock file with a lease: a deploy spans several SSH round trips (prepare, the SFTP upload,
activate), and a second deploy of the same bundle that starts in between would clean up the first one's staged
upload. `python3 -m edge_device release hold` takes flock on WORKDIR/.edge-sdk.deploy.lock and keeps it for as long
as the host keeps the command's stdin open, answering release operations sent as JSON lines meanwhile. When the host
is done it closes stdin; when the host or its connection dies, stdin reaches EOF (or the connection watch fires) and
the process exits — the kernel drops the flock with it, so a lock is never left behind by a dead deploy.

Protocol (one JSON object per line):
    in:  {"workdir": W, "wait_s": S, "holder": "who is deploying"}
    out: {"waiting": {"holder": ..., "since": ...}}      at most once, when another deploy holds the lock
    out: {"locked": true, "workdir": W}                  or {"error": "... already being deployed ..."} and exit 3
    in:  {"op": "prepare", "args": {...}}                  any number of release operations
    out: {...}                                           the operation's answer, or {"error": "..."}
"""

import errno
import fcntl
import json
import os
import select
import sys
import time

from .errors import EXIT_INTEGRITY, DeviceError
from .watchdog import watch_connection

DEPLOY_LOCK_NAME = ".edge-sdk.deploy.lock"
OP_LOCK_NAME = ".edge-sdk.lock"
OP_LOCK_TIMEOUT_S = 120


def workdir_path(p):
    """A target's workdir as an absolute path (relative ones are relative to the login home)."""
    p = os.path.expanduser(p)
    if not os.path.isabs(p):
        p = os.path.join(os.path.expanduser("~"), p)
    return os.path.normpath(p)


def _try_flock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (IOError, OSError) as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False


class OpLock(object):
    """flock on WORKDIR/.edge-sdk.lock around one release operation (prepare, activate, rollback): short sections
    that must not interleave, whoever runs them."""

    def __init__(self, wd):
        self.path = os.path.join(wd, OP_LOCK_NAME)

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.time() + OP_LOCK_TIMEOUT_S
        while not _try_flock(self.fd):
            if time.time() > deadline:
                os.close(self.fd)
                raise DeviceError("another release operation holds %s" % self.path)
            time.sleep(0.1)
        return self

    def __exit__(self, *a):
        os.close(self.fd)


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_holder(fd, holder):
    info = {"holder": holder, "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:  # best effort: on a full disk the lock still works, only the note about who holds it is missing
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
    except OSError:
        pass


def _stdin_closed(timeout_s):
    """True when the host closed our stdin (it gave up waiting, or its connection died) within timeout_s."""
    r, _, _ = select.select([sys.stdin], [], [], timeout_s)
    return bool(r) and not sys.stdin.readline()


def _say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _acquire(wd, wait_s):
    """The locked fd, or None after printing why not (busy past wait_s, or the host went away)."""
    if not os.path.isdir(wd):
        os.makedirs(wd)
    fd = os.open(os.path.join(wd, DEPLOY_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.time() + wait_s
    said = False
    while not _try_flock(fd):
        info = _read_holder(fd)
        who = "%s (pid %s) since %s" % (info.get("holder", "another deploy"), info.get("pid", "?"),
                                        info.get("since", "?"))
        if time.time() >= deadline:
            _say({"error": "%s is already being deployed by %s; waited %gs for it to finish"
                           % (wd, who, wait_s), "busy": True})
            os.close(fd)
            return None
        if not said:
            _say({"waiting": {"holder": info.get("holder"), "pid": info.get("pid"), "since": info.get("since")}})
            said = True
        if _stdin_closed(min(0.2, max(0.0, deadline - time.time()))):
            os.close(fd)
            return None
    return fd


def hold(ops):
    """`release hold`: take the deploy lock, then serve release operations from stdin until it closes."""
    watch_connection()  # a host that vanished without closing stdin must not keep the lock
    try:
        req = json.loads(sys.stdin.readline() or "{}")
        wd = workdir_path(req["workdir"])
        fd = _acquire(wd, float(req.get("wait_s", 0)))
    except (ValueError, KeyError, TypeError) as exc:
        _say({"error": "bad lock request: %s" % exc})
        return EXIT_INTEGRITY
    except (IOError, OSError) as exc:
        _say({"error": "cannot take the deploy lock: %s: %s" % (getattr(exc, "filename", "") or "", exc)})
        return EXIT_INTEGRITY
    if fd is None:
        return EXIT_INTEGRITY
    _write_holder(fd, str(req.get("holder") or "a deploy"))
    _say({"locked": True, "workdir": wd})
    for line in iter(sys.stdin.readline, ""):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            out = ops[r["op"]](r.get("args") or {})
        except DeviceError as exc:
            out = {"error": str(exc)}
        except (IOError, OSError) as exc:
            out = {"error": "%s: %s" % (getattr(exc, "filename", "") or "", exc)}
        except (ValueError, KeyError, TypeError) as exc:
            out = {"error": "bad request %r: %s: %s" % (line[:80], type(exc).__name__, exc)}
        _say(out)
    os.close(fd)
    return 0
