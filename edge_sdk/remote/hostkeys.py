"""Is this really the device? Host-key pinning against known_hosts, with explicit trust-on-first-use.

paramiko ships an auto-add policy (trusts anyone) and a warning policy (trusts anyone, loudly): both defeat the point of
host keys. OpenSSH's `StrictHostKeyChecking=accept-new` is the behaviour we want and paramiko has no such policy, so
this module provides it: unknown keys are refused unless the user opts in, and then appended to known_hosts exactly
as OpenSSH writes them; a changed key is refused always (paramiko raises BadHostKeyException before any policy
runs, and this module also treats a known key of *another type* as a change).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko
from paramiko.hostkeys import InvalidHostKey

from ..errors import RemoteError


def fingerprint(key: paramiko.PKey) -> str:
    """`ssh-ed25519 SHA256:...`: the form `ssh-keygen -lf` prints, so users can compare it out of band."""
    return f"{key.get_name()} {key.fingerprint}"


#: What paramiko raises for a known_hosts file it cannot parse (InvalidHostKey: a key that is not base64).
KNOWN_HOSTS_ERRORS = (OSError, paramiko.SSHException, ValueError, InvalidHostKey)


def known_hosts_error(path: Path, exc: BaseException) -> RemoteError:
    """One line naming the file and, for a garbled key, the line: paramiko's own message has neither."""
    if isinstance(exc, InvalidHostKey):
        bad = getattr(exc, "line", "")
        lineno = next((i for i, line in enumerate(_lines(path), 1) if line.strip() == bad), None)
        where = f"{path}:{lineno}" if lineno else str(path)
        return RemoteError(f"{where}: cannot read known_hosts: the key on this line is not valid base64 "
                           f"({getattr(exc, 'exc', exc)}); expected 'HOST KEYTYPE BASE64KEY' as OpenSSH writes it: "
                           f"fix or delete the line")
    if isinstance(exc, UnicodeDecodeError):
        return RemoteError(f"{path}: cannot read known_hosts: not a text file ({exc.reason} at byte {exc.start})")
    return RemoteError(f"{path}: cannot read known_hosts: {exc}")


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def load_known_hosts(path: Path) -> paramiko.HostKeys:
    """Parse known_hosts (hashed entries included). A missing file is an empty one; a garbled line is an error."""
    hk = paramiko.HostKeys()
    if path.is_file():
        try:
            hk.load(str(path))
        except KNOWN_HOSTS_ERRORS as exc:
            raise known_hosts_error(path, exc) from None
    return hk


def append_known_host(path: Path, hostkey_name: str, key: paramiko.PKey) -> None:
    """Append one `name keytype base64` line, creating ~/.ssh-style dirs (0700) and the file (0600) as OpenSSH does.

    Appending (not paramiko's save_host_keys) keeps the user's comments, hashed entries and other hosts untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    needs_nl = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(("\n" if needs_nl else "") + f"{hostkey_name} {key.get_name()} {key.get_base64()}\n")


def _key_file_kind(key: paramiko.PKey) -> str:
    name = key.get_name()
    return "ed25519" if "ed25519" in name else "ecdsa" if name.startswith("ecdsa") else "rsa"


def changed_key_message(hostkey_name: str, known_hosts: Path, expected: paramiko.PKey, got: paramiko.PKey) -> str:
    return (f"HOST KEY CHANGED for {hostkey_name}: {known_hosts} pins {fingerprint(expected)} but the server "
            f"presented {fingerprint(got)}; this may be a man-in-the-middle attack, so the connection is refused "
            f"(--accept-new-host-key never replaces a pinned key). If the device was really re-installed, remove "
            f"the old entry: ssh-keygen -R '{hostkey_name}' -f {known_hosts}")


class PinnedHostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for hosts with no key of the offered type in known_hosts.

    accept_new=False: refuse, showing the fingerprint so the user can check it and opt in.
    accept_new=True: trust on first use — but only when the host has *no* pinned key at all.
    """

    def __init__(self, known_hosts: Path, accept_new: bool = False):
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.accepted: str | None = None  # fingerprint written on this connection, for the caller to report
        self._lock = threading.Lock()

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        pinned = load_known_hosts(self.known_hosts).lookup(hostname)
        if pinned:
            expected = next(iter(pinned.values()))
            raise RemoteError(changed_key_message(hostname, self.known_hosts, expected, key))
        if not self.accept_new:
            raise RemoteError(
                f"unknown host key for {hostname}: {fingerprint(key)} is not in {self.known_hosts}; check it out of "
                f"band (on the device: ssh-keygen -lf /etc/ssh/ssh_host_{_key_file_kind(key)}_key.pub), then rerun "
                f"with --accept-new-host-key to pin it")
        with self._lock:
            append_known_host(self.known_hosts, hostname, key)
            client.get_host_keys().add(hostname, key.get_name(), key)
            self.accepted = fingerprint(key)
