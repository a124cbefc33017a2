"""The target's deploy lock, held from the host: one deploy (or rollback) at a time per device workdir.

A deploy is several round trips (prepare, the SFTP upload, activate); two deploys interleaving them clean up each
other's staged uploads. So a deploy opens a channel of its own running `edge_device release hold`
(device/deploylock.py): the device process takes a flock, says so, and then answers the release operations the
host sends it as JSON lines — prepare and activate run inside the lock, in one process. Closing the channel (or
losing the connection) ends that process and with it the lock; nothing stale is ever left on the device.

    with DeployLock(session, wait_s=300, on_wait=print) as lock:     # waits while another deploy holds it
        prep = lock.call("prepare", {...})
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from typing import Callable

import paramiko

from ..errors import RemoteError
from .command import EXIT_NO_DIR, remote_command
from .device import device_argv, package_root, upload_package
from .session import ConnectionLost, Session

DEFAULT_LOCK_WAIT_S = 300.0


class DeployBusy(RemoteError):
    """Another deploy holds the target's lock and did not finish within the wait."""


def holder_name(what: str = "edge-sdk deploy") -> str:
    return f"{what} from {getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


class DeployLock:
    """Hold the deploy lock of `session.target` for a `with` block; `call(op, payload)` runs a release op inside it.

    on_wait(info) is called once when another deploy holds the lock (info: holder, pid, since); the wait ends after
    wait_s with DeployBusy ("already being deployed").
    """

    def __init__(self, session: Session, *, wait_s: float = DEFAULT_LOCK_WAIT_S, holder: str | None = None,
                 on_wait: Callable[[dict], None] | None = None):
        self.session, self.wait_s, self.on_wait = session, wait_s, on_wait
        self.holder = holder or holder_name()
        self.workdir: str | None = None
        self._chan: paramiko.Channel | None = None
        self._buf = b""
        self._err = b""

    @property
    def _where(self) -> str:
        return f"{self.session.target.name} ({self.session.endpoint})"

    def __enter__(self) -> "DeployLock":
        t = self.session.target
        for attempt in (1, 2):
            self._open()
            first = self._line(t.connect_timeout_s + 60, "starting the deploy lock")
            if first is None:
                self._chan.status_event.wait(10)  # EOF comes a moment before the exit status
                rc = self._chan.exit_status if self._chan.exit_status_ready() else None
                self._close()
                if rc == EXIT_NO_DIR and attempt == 1:  # the device package is not there yet
                    upload_package(self.session)
                    continue
                if rc == 127:
                    raise RemoteError(f"'{t.python}' not found on {self._where} (target field 'python')")
                tail = (self._err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
                raise RemoteError(f"the deploy lock on {self._where} did not start (exit {rc}): {tail[:300]}")
            break
        if "waiting" in first:
            if self.on_wait is not None:
                self.on_wait(first["waiting"] or {})
            first = self._line(self.wait_s + t.connect_timeout_s + 30, "waiting for the deploy lock")
            if first is None:
                self._close()
                raise self._lost("waiting for the deploy lock")
        if "error" in first:
            self._close()
            cls = DeployBusy if first.get("busy") else RemoteError
            raise cls(f"{self.session.target.name}: {first['error']}")
        self.workdir = first.get("workdir")
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def call(self, op: str, payload: dict, *, timeout: float | None = None) -> dict:
        """One release operation inside the lock; {"error": ...} → RemoteError naming the op and the target."""
        t = self.session.target
        if self._chan is None:
            raise RemoteError(f"the deploy lock on {self._where} is not held")
        try:
            self._chan.sendall((json.dumps({"op": op, "args": payload}) + "\n").encode())
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self.session.failure(exc, f"cannot send '{op}' to {self._where}") from None
        out = self._line(t.command_timeout_s if timeout is None else timeout, op)
        if out is None:
            raise self._lost(f"running {op}")
        if "error" in out:
            raise RemoteError(f"{op} on {t.name}: {out['error']}")
        return out

    # ---- the channel ----

    def _open(self) -> None:
        s, t = self.session, self.session.target
        cmd = remote_command(device_argv(t.python, "release", "hold"), cwd=package_root(s))
        self._buf = self._err = b""
        try:
            chan = s.transport.open_session(timeout=t.connect_timeout_s)
            chan.exec_command(cmd)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise s.failure(exc, f"cannot start the deploy lock on {self._where}") from None
        try:
            chan.sendall((json.dumps({"workdir": t.remote_workdir, "wait_s": self.wait_s,
                                      "holder": self.holder}) + "\n").encode())
        except (OSError, EOFError, paramiko.SSHException) as exc:
            # The wrapper can exit (125: no package on the device yet) and the server close the channel before the
            # request goes out; __enter__ then reads that exit status. Anything else is a failure to start.
            if not chan.closed or s.connection_dead():
                chan.close()
                raise s.failure(exc, f"cannot start the deploy lock on {self._where}") from None
        self._chan = chan

    def _line(self, timeout: float, what: str) -> dict | None:
        """The next JSON line from the device process; None at EOF (it exited, or the connection is gone)."""
        chan = self._chan
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._close()
                raise RemoteError(f"{what} on {self._where}: no answer within {timeout:g} s")
            chan.settimeout(min(left, 0.5))
            while chan.recv_stderr_ready():
                self._err = (self._err + chan.recv_stderr(1 << 16))[-4096:]
            try:
                data = chan.recv(1 << 16)
            except socket.timeout:
                continue
            except (OSError, EOFError, paramiko.SSHException):
                data = b""
            if not data:
                while chan.recv_stderr_ready():
                    self._err = (self._err + chan.recv_stderr(1 << 16))[-4096:]
                return None
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            out = json.loads(line)
        except ValueError:
            out = None
        if not isinstance(out, dict):
            raise RemoteError(f"{what} on {self._where}: unexpected answer {line[:200]!r}")
        return out

    def _lost(self, what: str) -> RemoteError:
        if self.session.connection_dead():
            return ConnectionLost(f"the connection to {self._where} was lost while {what}")
        tail = (self._err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return RemoteError(f"the device's release process on {self._where} ended while {what}: {tail[:300]}")

    def _close(self) -> None:
        chan, self._chan = self._chan, None
        if chan is None:
            return
        try:
            chan.shutdown_write()  # EOF on its stdin: the device process releases the lock and exits
            end = time.monotonic() + 5
            while not chan.exit_status_ready() and time.monotonic() < end:
                time.sleep(0.01)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        chan.close()
