"""Several "devices" for fleet tests: one real OpenSSH server per device on its own loopback port (root logs in, the
target's python is this interpreter, each device has its own workdir), plus the ways a real device goes bad —
its sshd killed (listener and every connection), a changed host key, a full disk (a small tmpfs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class Device:
    name: str
    server: object  # LoopbackSshd
    workdir: Path
    yaml: Path

    def current(self) -> str | None:
        link = self.workdir / "current"
        return os.readlink(link).split("/")[-1] if link.is_symlink() else None


def start_devices(work: Path, names: list[str], targets_dir: Path, *, tags: dict[str, list[str]] | None = None,
                  client_key: Path | None = None) -> list[Device]:
    """One sshd per name, a target YAML per device in targets_dir (profile host, this python)."""
    from edge_sdk.remote.loopback import start_loopback_sshd

    targets_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        srv = start_loopback_sshd(work / f"sshd-{name}", users=["root"], client_key=client_key)
        client_key = client_key or srv.client_key
        wd = work / f"device-{name}"
        fields = {"name": name, "host": "127.0.0.1", "port": srv.port, "user": "root",
                  "identity_file": str(srv.client_key), "known_hosts": str(srv.known_hosts), "profile": "host",
                  "python": sys.executable, "workdir": str(wd), "connect_timeout_s": 10,
                  "command_timeout_s": 120, "tags": (tags or {}).get(name, [])}
        y = targets_dir / f"{name}.yaml"
        y.write_text(yaml.safe_dump(fields, sort_keys=False))
        out.append(Device(name, srv, wd, y))
    return out


def change_host_key(dev: Device) -> None:
    """Pin ANOTHER key for the device in its known_hosts: the server now presents a changed host key."""
    from edge_sdk.remote.loopback import write_ed25519_keypair

    line = write_ed25519_keypair(dev.server.directory / "impostor_key", "impostor")
    dev.server.known_hosts.write_text(dev.server.known_hosts_entry(key_line=line) + "\n")


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def sshd_processes(server) -> list[int]:
    """The listener and every per-connection sshd under it (not the commands they run)."""
    todo, found = [server.proc.pid], []
    while todo:
        p = todo.pop()
        try:
            comm = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("sshd"):
            found.append(p)
            todo += _children(p)
    return found


def kill_sshd(server) -> None:
    """kill -9 the device's sshd: the listener and every connection's sshd, like a crashed or unplugged device."""
    for p in sshd_processes(server):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    server.proc.wait(5)


def mount_tmpfs(path: Path, size: str = "256k") -> str | None:
    """A tiny tmpfs at path (the device's disk is full for anything bigger); None when mounted, else why not."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs to fill a device's disk"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    return None if r.returncode == 0 else f"mount -t tmpfs refused: {r.stderr.strip() or r.returncode}"


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
