"""A Fabric-like SSH session over paramiko: `run(argv)`, `put(local, remote)`, `sha256(paths)`.

Why not Fabric itself: it adds invoke's shell-string API (the opposite of "argv only") and a second config system,
while what we need on top of paramiko is small and must be exact:
- every remote command is built from an argv list with shlex.join — nothing user-supplied reaches a shell unquoted;
- output is streamed line by line to a callback while it runs (benchmarks print progress);
- at a deadline, on Ctrl-C, or when the callback raises, the remote command *and everything it started* is killed
  (closing a channel does not stop a process on the device); see edge_sdk/device/kill.py;
- host keys are pinned (hostkeys.py) and the transport is tuned so SFTP uploads keep up with `scp`.
"""

from __future__ import annotations

import logging
import os
import select
import shlex
import socket
import time
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from ..errors import RemoteError
from .command import LineCallback, OutputLines, remote_command
from .endpoint import Endpoint, resolve_endpoint
from .hostkeys import KNOWN_HOSTS_ERRORS, PinnedHostKeyPolicy, changed_key_message, known_hosts_error
from .targets import DeployTarget

# paramiko's transport thread logs failures (with tracebacks) at ERROR; with no handler configured, Python's
# last-resort handler would print them on stderr next to our one-line error. Callers that configure logging still
# get them.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# Our receive side (command output, SFTP reads): a large window so the sender never stalls on loopback/LAN, and
# large packets (fewer to decrypt and parse in Python). Uploads are bounded by the *server's* window/packet sizes,
# which is why put() relies on large SFTP requests instead.
WINDOW_BYTES = 16 << 20
MAX_PACKET_BYTES = 1 << 17
# AES-GCM needs no separate MAC pass; with AES-NI it is the cheapest cipher both paramiko and OpenSSH offer.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")
SFTP_DEFAULT_REQUEST = 32768  # the size every SFTP server must accept
SFTP_MAX_REQUEST = 255 * 1024  # OpenSSH accepts 256 KiB messages; stay under it with room for the header
READ_CHUNK = 4 << 20
EOF_GRACE_S = 2.0  # after the exit status, how long run() waits for the output still in flight (see run)


class RunResult(NamedTuple):
    rc: int  # exit status; -1 when the process died from a signal
    stdout: str
    stderr: str


class ConnectionLost(RemoteError):
    """The SSH connection died under a command or a transfer (a killed sshd, a cut link, a rebooting device)."""


class RemoteTimeout(RemoteError):
    """A remote command passed its deadline and was killed (with everything it started)."""

    def __init__(self, message: str, *, stdout: str = "", stderr: str = "", killed: int = 0):
        super().__init__(message)
        self.stdout, self.stderr, self.killed = stdout, stderr, killed


def _mb(n: int) -> str:
    return f"{n} bytes" if n < 100_000 else f"{n / 1e6:.1f} MB"


def _display(argv: list[str]) -> str:
    """argv for messages: quoted like the shell would see it, with long inline scripts abbreviated."""
    return shlex.join([a if len(a) <= 60 else f"<{len(a)} chars>" for a in argv])[:160]


def _await_pid(chan, err: OutputLines, wait_s: float = 3.0) -> int | None:
    """The remote PID arrives as the first stderr line, but a stdout line can be handled (and a callback can raise)
    before it is read: keep reading stderr — without callbacks, we are cleaning up — until it shows up."""
    err.on_line = None
    end = time.monotonic() + wait_s
    while err.pid is None and time.monotonic() < end:
        if chan.recv_stderr_ready():
            err.feed(chan.recv_stderr(1 << 16))
        elif chan.exit_status_ready() or chan.closed:
            break
        else:
            time.sleep(0.01)
    return err.pid


def _transport_factory(sock, **kw) -> paramiko.Transport:
    t = paramiko.Transport(sock, default_window_size=WINDOW_BYTES, default_max_packet_size=MAX_PACKET_BYTES,
                           disabled_algorithms=kw.get("disabled_algorithms"))
    opts = t.get_security_options()
    have = set(opts.ciphers)
    opts.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in have) + tuple(c for c in opts.ciphers
                                                                          if c not in PREFERRED_CIPHERS)
    return t


class Session:
    """One SSH connection to a target. Use as a context manager; commands take argv lists, never shell strings.

    >>> with Session(target) as s:
    ...     rc, out, err = s.run(["uname", "-m"], timeout=10)
    """

    def __init__(self, target: DeployTarget, *, accept_new_host_key: bool = False, endpoint: Endpoint | None = None):
        self.target = target
        self.endpoint = endpoint or resolve_endpoint(target)
        self.accept_new_host_key = accept_new_host_key
        self.accepted_host_key: str | None = None  # fingerprint pinned by this session (trust on first use)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._read_size = self._write_size = SFTP_DEFAULT_REQUEST

    # ---- connection ----

    def __enter__(self) -> "Session":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> "Session":
        if self._client is not None:
            return self
        ep, t = self.endpoint, self.target
        client = paramiko.SSHClient()
        if ep.known_hosts.is_file():
            try:
                client.load_host_keys(str(ep.known_hosts))
            except KNOWN_HOSTS_ERRORS as exc:
                raise known_hosts_error(ep.known_hosts, exc) from None
        policy = PinnedHostKeyPolicy(ep.known_hosts, accept_new=self.accept_new_host_key)
        client.set_missing_host_key_policy(policy)
        to = t.connect_timeout_s
        try:
            client.connect(ep.hostname, ep.port, ep.username, key_filename=ep.key_filenames or None, timeout=to,
                           banner_timeout=to, auth_timeout=to, channel_timeout=to, allow_agent=True,
                           look_for_keys=not ep.key_filenames, transport_factory=_transport_factory)
        except BaseException as exc:
            tr = client.get_transport()
            got_banner = bool(tr is not None and getattr(tr, "remote_version", ""))
            client.close()
            raise self._connect_error(exc, got_banner) from None
        self.accepted_host_key = policy.accepted
        if t.keepalive_s:
            client.get_transport().set_keepalive(t.keepalive_s)
        self._client = client
        return self

    def _connect_error(self, exc: BaseException, got_banner: bool = True) -> BaseException:
        """One clear RemoteError for whatever paramiko/socket raised while connecting."""
        ep, to = self.endpoint, self.target.connect_timeout_s
        where = f"{ep.hostname}:{ep.port}"
        if isinstance(exc, RemoteError) or not isinstance(exc, Exception):
            return exc
        if isinstance(exc, paramiko.BadHostKeyException):
            return RemoteError(changed_key_message(ep.hostkey_name, ep.known_hosts, exc.expected_key, exc.key))
        if isinstance(exc, paramiko.PasswordRequiredException):
            return RemoteError(f"identity file {ep.key_filenames[0] if ep.key_filenames else ''} is encrypted: load it "
                               f"into ssh-agent (ssh-add FILE) — edge-sdk never asks for passphrases")
        if isinstance(exc, paramiko.SSHException) and "no authentication methods" in str(exc).lower():
            return RemoteError(f"authentication failed for {ep}: no key to offer (no identity_file in the target or "
                               f"the SSH config, ssh-agent empty or not running, no ~/.ssh/id_* keys)")
        if isinstance(exc, paramiko.AuthenticationException):
            tried = ", ".join(ep.key_filenames) if ep.key_filenames else "ssh-agent and ~/.ssh/id_* keys"
            return RemoteError(f"authentication failed for {ep} (tried {tried}): {exc}; is the public key in the "
                               f"device's authorized_keys for user '{ep.username}'?")
        if isinstance(exc, socket.gaierror):
            return RemoteError(f"cannot resolve host '{ep.hostname}' (target '{self.target.name}'): {exc.strerror}")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return RemoteError(f"cannot connect to {where}: timed out after {to:g} s")
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            return RemoteError(f"cannot connect to {where}: connection refused (is sshd running on that port?)")
        if isinstance(exc, (paramiko.SSHException, EOFError)) and (not got_banner or "banner" in str(exc).lower()):
            return RemoteError(f"no SSH banner from {where} within {to:g} s (is it an SSH server?)")
        if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
            return RemoteError(f"SSH connection to {ep} failed: {exc or type(exc).__name__}")
        return exc

    @property
    def transport(self) -> paramiko.Transport:
        if self._client is None:
            self.connect()
        t = self._client.get_transport()
        if t is None or not t.is_active():
            raise RemoteError(f"connection to {self.endpoint} is closed")
        return t

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # closing a dead connection must not mask the error that killed it
                pass
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- commands ----

    def run(self, argv: list[str], *, timeout: float | None = None, on_line: LineCallback | None = None,
            stdin: bytes | None = None, cwd: str | None = None, env: dict[str, str] | None = None,
            check: bool = False, kill_grace_s: float = 2.0) -> RunResult:
        """Run argv on the device, streaming lines to on_line; returns RunResult(rc, stdout, stderr).

        timeout: seconds (default: the target's command_timeout_s). At the deadline the command's process tree is
        killed (SIGTERM, then SIGKILL after kill_grace_s) and RemoteTimeout is raised with the output so far. The
        same kill happens on KeyboardInterrupt or when on_line raises; the exception then propagates.
        check=True raises RemoteError on a non-zero exit status. stdin is sent (then closed) before any output is
        read: meant for small payloads such as JSON arguments, not for streaming.
        """
        argv = [str(a) for a in argv] if isinstance(argv, (list, tuple)) else argv
        cmd = remote_command(argv, cwd, env)
        limit = self.target.command_timeout_s if timeout is None else timeout
        try:
            chan = self.transport.open_session(timeout=self.target.connect_timeout_s)
            chan.exec_command(cmd)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self.failure(exc, f"cannot start {_display(argv)} on {self.endpoint}") from None
        try:
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            # A command can end without reading its stdin (the wrapper's `cd` failing with EXIT_NO_DIR, say) and the
            # server then closes the channel before the payload goes out: paramiko says "Socket is closed". That is
            # a pipe closed by its reader, not a failure to start: its exit status, read below, tells what happened.
            if not chan.closed or self.connection_dead():
                chan.close()
                raise self.failure(exc, f"cannot start {_display(argv)} on {self.endpoint}") from None
        out, err = OutputLines("stdout", on_line), OutputLines("stderr", on_line)
        t0 = time.monotonic()
        deadline = t0 + limit
        exited_at = None
        try:
            while True:
                got = False
                while chan.recv_ready():
                    out.feed(chan.recv(1 << 16))
                    got = True
                while chan.recv_stderr_ready():
                    err.feed(chan.recv_stderr(1 << 16))
                    got = True
                # exit_status_ready() is also true once the channel closed (paramiko sets it on close). sshd may
                # send the exit status before the output it has still to read from the command's pipes, so this
                # waits for EOF too, but not for ever: a background process that keeps the command's stdout open
                # would hold EOF back until it ends. EOF is read *before* the buffers are checked: output that
                # lands in between precedes the EOF, and is drained on the next turn instead of being lost.
                if chan.exit_status_ready():
                    exited_at = exited_at or time.monotonic()
                    ended = chan.eof_received or chan.closed or time.monotonic() - exited_at > EOF_GRACE_S
                    if chan.recv_ready() or chan.recv_stderr_ready():
                        continue
                    if ended:
                        break
                elif not self._client.get_transport().is_active():
                    raise RemoteError(f"connection to {self.endpoint} lost while running {_display(argv)}")
                left = deadline - time.monotonic()
                if left <= 0:
                    killed = self._kill(_await_pid(chan, err), kill_grace_s)
                    chan.close()
                    raise RemoteTimeout(
                        f"remote command {_display(argv)} did not finish within {limit:g} s on "
                        f"{self.target.name}; killed its process tree ({killed} process(es))",
                        stdout=out.finish(), stderr=err.finish(), killed=killed)
                if not got:
                    select.select([chan], [], [], min(0.05, left))
        except RemoteTimeout:
            raise
        except BaseException as exc:
            # KeyboardInterrupt, a raising callback, or a lost connection: leave nothing running on the device.
            if not chan.exit_status_ready():
                try:
                    self._kill(_await_pid(chan, err), kill_grace_s)
                except Exception:  # the original exception matters more than a failed cleanup
                    pass
            chan.close()
            if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
                raise self.failure(exc, f"{_display(argv)} on {self.endpoint} failed") from None
            raise
        rc = chan.recv_exit_status()
        if rc == -1 and self._channel_lost(chan):  # no exit status: the connection died, not the command
            chan.close()
            raise ConnectionLost(f"the connection to {self.endpoint} was lost while running {_display(argv)} "
                                 f"(after {time.monotonic() - t0:.1f} s); the command did not report how it ended")
        chan.close()
        res = RunResult(rc, out.finish(), err.finish())
        if check and rc != 0:
            tail = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no output"])[-1]
            raise RemoteError(f"remote command {_display(argv)} failed on {self.target.name} with exit "
                              f"status {rc}: {tail[:300]}")
        return res

    def connection_dead(self, settle_s: float = 0.3) -> bool:
        """Is the transport gone? (Waits up to settle_s: paramiko closes the channels a moment before it marks the
        transport inactive, so an error seen on a channel can arrive first.)"""
        end = time.monotonic() + settle_s
        while True:
            tr = self._client.get_transport() if self._client is not None else None
            if tr is None or not tr.is_active():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)

    def _channel_lost(self, chan) -> bool:
        # A command killed by a signal ends with EOF, exit-signal and close; a dead connection with none of them.
        return not chan.eof_received or self.connection_dead()

    def failure(self, exc: BaseException, what: str) -> RemoteError:
        """`what` failed because of exc: say that the connection was lost when it was (paramiko's own text for that
        is often empty: EOFError(), 'Socket is closed')."""
        if self.connection_dead():
            return ConnectionLost(f"{what}: the connection to {self.endpoint} was lost")
        return RemoteError(f"{what}: {str(exc) or type(exc).__name__}")

    def _kill(self, pid: int | None, grace_s: float) -> int:
        """Kill pid's session/process group and descendants on the device (edge_device kill). Returns a count."""
        from .device import kill_tree

        return kill_tree(self, pid, grace_s)

    def sha256(self, remote_paths: list[str]) -> dict[str, str | None]:
        """sha256 of each remote file in ONE command ({path: hex, or None when missing}); relative to the home."""
        from .device import sha256_remote

        return sha256_remote(self, remote_paths)

    # ---- files ----

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._client_or_connect().open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self.failure(exc, f"cannot open SFTP on {self.endpoint}") from None
            self._read_size, self._write_size = self._negotiate_request_sizes(self._sftp)
        return self._sftp

    def _client_or_connect(self) -> paramiko.SSHClient:
        if self._client is None:
            self.connect()
        return self._client

    @staticmethod
    def _negotiate_request_sizes(sftp: paramiko.SFTPClient) -> tuple[int, int]:
        """(read, write) request sizes the server accepts, from OpenSSH's limits@openssh.com extension.

        Why: paramiko uses 32 KiB per SFTP request by default, so a 64 MiB file is 2048 requests each acked and
        parsed in Python (and paramiko's read prefetch scans all outstanding requests per read: quadratic). 255 KiB
        requests cut that 8x and put uploads on par with scp. Servers without the extension get the 32 KiB every
        server must accept. paramiko has no public API for extensions, hence the private _request.
        """
        try:
            t, msg = sftp._request(CMD_EXTENDED, "limits@openssh.com")
            if t == CMD_EXTENDED_REPLY:
                msg.get_int64()  # max packet length
                sizes = (msg.get_int64(), msg.get_int64())  # max read length, max write length
                return tuple(max(SFTP_DEFAULT_REQUEST, min(int(x), SFTP_MAX_REQUEST)) if x else SFTP_DEFAULT_REQUEST
                             for x in sizes)  # type: ignore[return-value]
        except (IOError, paramiko.SSHException, EOFError):
            pass
        return SFTP_DEFAULT_REQUEST, SFTP_DEFAULT_REQUEST

    def put(self, local: str | os.PathLike, remote: str, *,
            on_progress: Callable[[int, int], None] | None = None) -> int:
        """Upload one file (pipelined SFTP writes); returns bytes sent. Errors name both paths."""
        sftp = self.sftp
        total = os.path.getsize(local)
        done = 0
        try:
            with open(local, "rb") as src, sftp.open(remote, "wb") as dst:
                dst.MAX_REQUEST_SIZE = self._write_size
                dst.set_pipelined(True)
                while True:
                    block = src.read(READ_CHUNK)
                    if not block:
                        break
                    dst.write(block)
                    done += len(block)
                    if on_progress is not None:
                        on_progress(done, total)
        except (IOError, OSError, paramiko.SSHException, EOFError) as exc:
            err = self.failure(exc, f"upload of {local} to {self.endpoint.hostname}:{remote} failed after "
                                     f"{_mb(done)} of {_mb(total)}")
            err.bytes_done = done  # type: ignore[attr-defined]
            raise err from None
        return total

    def get(self, remote: str, local: str | os.PathLike) -> int:
        """Download one file (prefetched SFTP reads of the negotiated size); returns its size."""
        sftp = self.sftp
        done = 0
        try:
            with sftp.open(remote, "rb") as src, open(local, "wb") as dst:
                src.MAX_REQUEST_SIZE = self._read_size
                src.prefetch(src.stat().st_size)
                while True:
                    # one request's worth per read: larger reads make paramiko concatenate chunks quadratically
                    block = src.read(self._read_size)
                    if not block:
                        break
                    dst.write(block)
                    done += len(block)
        except (IOError, OSError, paramiko.SSHException, EOFError) as exc:
            raise self.failure(exc, f"download of {self.endpoint.hostname}:{remote} failed after "
                                     f"{_mb(done)}") from None
        return done


@contextmanager
def connected(target: DeployTarget, session: Session | None = None, *,
              accept_new_host_key: bool = False) -> Iterator[Session]:
    """The caller's `session` (connected, left open), or a new Session that is closed on the way out."""
    if session is not None:
        yield session.connect()
        return
    with Session(target, accept_new_host_key=accept_new_host_key) as s:
        yield s
