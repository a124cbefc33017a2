"""A private OpenSSH server on 127.0.0.1: the real SSH target for tests, benchmarks and the demo.

Why not a mock: host-key checks, authentication, SFTP and process lifetimes are exactly what deploy must get right,
and only a real sshd behaves like a device. OpenSSH has no "run a throw-away server" mode, so this module writes the
minimal private config (keys in a temp dir, no PAM, internal-sftp) that works on this project's CI machines,
starts `sshd -D -e` on a free port and stops it by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


class SshdUnavailable(RuntimeError):
    """sshd is not installed or refused to start (callers skip, with this message as the reason)."""


def find_sshd() -> str | None:
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)),
                                        None)


def write_ed25519_keypair(private_path: Path, comment: str = "edge-sdk-test") -> str:
    """Write an unencrypted OpenSSH ed25519 private key (mode 600); return the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    line = f"{pub} {comment}"
    Path(str(private_path) + ".pub").write_text(line + "\n")
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.settimeout(1.0)
                if s.recv(4).startswith(b"SSH-"):  # the banner: sshd is really serving, not just bound
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class LoopbackSshd:
    directory: Path
    host: str
    port: int
    host_key: Path
    host_key_line: str  # "ssh-ed25519 AAAA..." (public)
    client_key: Path
    client_key_line: str
    known_hosts: Path
    log: Path
    proc: subprocess.Popen
    users: list[str] = field(default_factory=list)

    def known_hosts_entry(self, port: int | None = None, key_line: str | None = None) -> str:
        """The known_hosts line OpenSSH writes for this server (`[127.0.0.1]:PORT ssh-ed25519 AAAA...`)."""
        kt, b64 = (key_line or self.host_key_line).split()[:2]
        return f"[{self.host}]:{port or self.port} {kt} {b64}"

    def authorize(self, user: str, pubkey_line: str | None = None) -> None:
        """Let `user` log in with the client key (or another public key): keys live in our dir, not in homes."""
        d = self.directory / "authorized_keys"
        d.mkdir(exist_ok=True)
        with open(d / user, "a") as f:
            f.write((pubkey_line or self.client_key_line) + "\n")
        os.chmod(d / user, 0o644)  # sshd reads it with the login user's privileges
        if user not in self.users:
            self.users.append(user)

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_loopback_sshd(directory: str | Path, users: list[str] | None = None, *, host: str = "127.0.0.1",
                        host_key: Path | None = None, client_key: Path | None = None,
                        extra_config: list[str] | None = None) -> LoopbackSshd:
    """Start `sshd -D` on a free port of 127.0.0.1 that accepts the generated client key for `users`.

    `host_key`/`client_key` reuse existing keys (e.g. a second server with a *different* host key but the same
    client key). Raises SshdUnavailable with the reason when sshd is missing or does not come up.
    """
    sshd = find_sshd()
    if sshd is None:
        raise SshdUnavailable("OpenSSH server not installed (sshd not on PATH nor /usr/sbin/sshd); "
                              "scripts/setup-system installs it with apt-get")
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    # sshd reads authorized_keys as the login user: a non-root user must be able to traverse to it. Private keys
    # inside stay 0600.
    os.chmod(d, 0o755)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege-separation dir sshd insists on
    hk = host_key or d / "ssh_host_ed25519_key"
    if host_key is None:
        write_ed25519_keypair(hk, "edge-sdk-loopback-host")
    host_key_line = Path(str(hk) + ".pub").read_text().strip()
    ck = client_key or d / "client_ed25519"
    if client_key is None:
        write_ed25519_keypair(ck, "edge-sdk-loopback-client")
    client_key_line = Path(str(ck) + ".pub").read_text().strip()
    (d / "authorized_keys").mkdir(exist_ok=True)
    os.chmod(d / "authorized_keys", 0o755)
    cfg = d / "sshd_config"
    # Port/ListenAddress are passed as flags, never in the file (both would make sshd bind twice).
    cfg.write_text("\n".join([
        f"HostKey {hk}",
        f"AuthorizedKeysFile {d}/authorized_keys/%u",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        "PidFile none",
        "MaxStartups 64:30:128",
        "MaxSessions 64",
        "LogLevel VERBOSE",
        *(extra_config or []),
    ]) + "\n")
    log = d / "sshd.log"
    last_err = ""
    for _ in range(3):  # a free port can be taken between probing and binding: retry on another one
        port = free_port()
        logf = open(log, "ab")
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg), "-p", str(port), "-o", f"ListenAddress={host}"],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        if wait_for_port(host, port, 10.0, proc):
            server = LoopbackSshd(d, host, port, hk, host_key_line, ck, client_key_line, d / "known_hosts", log, proc)
            server.known_hosts.write_text(server.known_hosts_entry() + "\n")
            for u in users or []:
                server.authorize(u)
            return server
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        last_err = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
    raise SshdUnavailable(f"sshd did not start on {host}: {last_err or 'no output'}")
