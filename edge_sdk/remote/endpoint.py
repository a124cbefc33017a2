"""Where to connect and as whom: a DeployTarget's fields merged with ~/.ssh/config, the way `ssh` merges them.

Users already describe their devices in ~/.ssh/config (`Host jetson / HostName 10.0.0.7 / User nvidia`); a target
may just say `host: jetson`. Precedence is OpenSSH's: explicit target fields (like command-line flags) win over
the config file, which wins over defaults. paramiko.SSHConfig does the parsing and Host/Match matching.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from ..errors import InputError
from .targets import DeployTarget

SSH_PORT = 22


@dataclass(frozen=True)
class Endpoint:
    hostname: str
    port: int
    username: str
    key_filenames: list[str] = field(default_factory=list)
    known_hosts: Path = Path(os.path.expanduser("~/.ssh/known_hosts"))
    notes: tuple[str, ...] = ()

    @property
    def hostkey_name(self) -> str:
        """How OpenSSH (and paramiko) name this server in known_hosts: `host`, or `[host]:port` off port 22."""
        return self.hostname if self.port == SSH_PORT else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.username}@{self.hostname}:{self.port}"


def resolve_endpoint(target: DeployTarget, *, check_files: bool = True) -> Endpoint:
    """Merge target fields with the SSH config's HostName, Port, User, IdentityFile (and UserKnownHostsFile).

    check_files=False only describes the endpoint (for listings) without requiring the key file to exist here.
    """
    where = f"{target.source}: " if target.source else f"target '{target.name}': "
    # Files are checked here, at connect time, not when targets are listed: a key that only exists on the
    # machine that deploys must not break `edge-sdk targets` elsewhere.
    if check_files and target.identity_file and not os.path.isfile(target.identity_path):
        raise InputError(f"{where}field 'identity_file': file not found: {target.identity_path}")
    if target.ssh_config and not target.ssh_config_path.is_file():  # needed to describe it at all
        raise InputError(f"{where}field 'ssh_config': file not found: {target.ssh_config_path}")
    opts: dict = {}
    cfg_path = target.ssh_config_path
    if cfg_path is not None:
        try:
            opts = paramiko.SSHConfig.from_path(str(cfg_path)).lookup(target.host)
        except (OSError, paramiko.ssh_exception.ConfigParseError, ValueError) as exc:
            raise InputError(f"{cfg_path}: cannot read SSH config for host '{target.host}': {exc}") from None
    notes = []
    for unsupported in ("proxyjump", "proxycommand"):
        if unsupported in opts:
            notes.append(f"{cfg_path}: {unsupported} for '{target.host}' is ignored (not supported); "
                         f"connecting directly")
    hostname = opts.get("hostname", target.host)
    try:
        port = target.port or int(opts.get("port", SSH_PORT))
    except ValueError:
        raise InputError(f"{cfg_path}: Port for host '{target.host}' is not a number: {opts.get('port')!r}") from None
    username = target.user or opts.get("user") or getpass.getuser()
    if target.identity_file:
        keys = [target.identity_path]
    else:
        keys = [os.path.expanduser(k) for k in opts.get("identityfile", [])]
        keys = [k for k in keys if os.path.isfile(k)]
    if target.known_hosts:
        known_hosts = target.known_hosts_path
    elif opts.get("userknownhostsfile"):
        known_hosts = Path(os.path.expanduser(opts["userknownhostsfile"].split()[0]))
    else:
        known_hosts = target.known_hosts_path
    return Endpoint(hostname=hostname, port=port, username=username, key_filenames=keys, known_hosts=known_hosts,
                    notes=tuple(notes))
