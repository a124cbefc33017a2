"""Deploy targets: which host, which user/key, which device profile — YAML files validated like device profiles.

A target file (`deploy_targets/NAME.yaml`) names an SSH host (or an alias from ~/.ssh/config) and the device profile
the host is, so a deploy can refuse a bundle built for another device and `targets check` can compare the real
machine with what the profile claims. Bad files fail with one line naming the file, the field and what was expected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ..errors import InputError, format_validation_error

ENV_VAR = "EDGE_SDK_TARGETS"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DeployTarget(BaseModel):
    """One SSH-reachable device. Unset port/user/identity come from ~/.ssh/config, then from OpenSSH's defaults."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(1, ge=1, le=1)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Command-line name of the target")
    description: str | None = None
    tags: list[str] = Field(default_factory=list, description="Labels a fleet can select targets by")
    host: str = Field(min_length=1, description="Host name, IP address, or a Host alias from the SSH config")
    port: int | None = Field(None, ge=1, le=65535, description="Default: the SSH config's Port, else 22")
    user: str | None = Field(None, min_length=1, description="Default: the SSH config's User, else the local user")
    identity_file: str | None = Field(
        None, description="Private key file (relative paths are relative to this target file). When absent: "
                          "the SSH config's IdentityFile, ssh-agent, then ~/.ssh/id_* keys")
    known_hosts: str | None = Field(None, description="known_hosts file that pins the host key "
                                                      "(default ~/.ssh/known_hosts; relative to this file)")
    ssh_config: str | None = Field(None, description="SSH client config to read Host aliases from "
                                                     "(default ~/.ssh/config when it exists)")
    profile: str = Field(description="Device profile name or alias (see `edge-sdk devices`)")
    python: str = Field("python3", min_length=1, description="Interpreter on the device that runs the runner")
    workdir: str = Field("edge-sdk", min_length=1, description="Remote directory holding releases/ and current; "
                                                               "relative paths are relative to the login home")
    keep_releases: int = Field(3, ge=2, description="Releases kept on the device (current and previous always)")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect, SSH banner and authentication timeout")
    command_timeout_s: float = Field(600.0, gt=0, description="Default deadline for a remote command")
    keepalive_s: int = Field(15, ge=0, description="SSH keepalive interval (0 = off)")

    _source: Path | None = PrivateAttr(None)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if v.startswith("-") or any(c.isspace() for c in v) or _CONTROL.search(v):
            raise ValueError("expected a host name, address or SSH alias without spaces, control characters "
                             "or a leading '-'")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", t)]
        if bad:
            raise ValueError(f"expected tags of letters, digits, '.', '_' or '-'; got {bad[0]!r}")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith("-") or _CONTROL.search(v) or any(c.isspace() for c in v)):
            raise ValueError("expected a login name without spaces, control characters or a leading '-'")
        return v

    @field_validator("workdir", "python")
    @classmethod
    def _no_control(cls, v: str) -> str:
        # Spaces, quotes and shell metacharacters are fine (every remote command is quoted); control characters
        # in a path are almost certainly a YAML accident and would make logs lie.
        if _CONTROL.search(v):
            raise ValueError("must not contain control characters (newline, tab, NUL, ...)")
        return v

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, v: str) -> str:
        if v.rstrip("/") in ("", "~"):
            raise ValueError("expected a dedicated directory, not '/' or the home directory itself")
        if v.startswith("~") and not v.startswith("~/"):
            raise ValueError("'~user' paths are not supported; use an absolute path or one relative to the home")
        return v

    @property
    def source(self) -> Path | None:
        """The YAML file this target came from (None when built in code)."""
        return self._source

    def _rel_to_file(self, p: str) -> str:
        p = os.path.expanduser(p)
        if not os.path.isabs(p) and self._source is not None:
            p = str(self._source.parent / p)
        return p

    @property
    def identity_path(self) -> str | None:
        return self._rel_to_file(self.identity_file) if self.identity_file else None

    @property
    def known_hosts_path(self) -> Path:
        return Path(self._rel_to_file(self.known_hosts) if self.known_hosts else os.path.expanduser("~/.ssh/known_hosts"))

    @property
    def ssh_config_path(self) -> Path | None:
        if self.ssh_config:
            return Path(self._rel_to_file(self.ssh_config))
        default = Path(os.path.expanduser("~/.ssh/config"))
        return default if default.is_file() else None

    @property
    def remote_workdir(self) -> str:
        """Workdir as the device sees it: '~/x' → 'x' (relative to the login home, for SFTP and commands alike)."""
        return self.workdir[2:] if self.workdir.startswith("~/") else self.workdir


def load_target_file(path: str | Path, registry=None) -> DeployTarget:
    """Read and validate one target file; the profile is checked against the device-profile registry."""
    from ..profiles.loader import read_yaml

    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a YAML mapping with target fields (name, host, profile, ...), "
                         f"got {type(data).__name__}")
    try:
        target = DeployTarget.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(str(path), exc)) from None
    target._source = path.resolve()
    if registry is not None:
        try:
            registry.resolve(target.profile)
        except InputError as exc:
            raise InputError(f"{path}: field 'profile': {exc}") from None
    return target


def targets_dirs(cli_dirs: list[str] | None = None) -> list[Path]:
    """--targets-dir values, else $EDGE_SDK_TARGETS (os.pathsep-separated), else ./deploy_targets when present."""
    if cli_dirs:
        dirs = [Path(d) for d in cli_dirs]
    elif os.environ.get(ENV_VAR):
        dirs = [Path(d) for d in os.environ[ENV_VAR].split(os.pathsep) if d]
    else:
        dirs = [p for p in (Path("deploy_targets"),) if p.is_dir()]
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"{d}: targets directory does not exist")
    return dirs


def load_targets(dirs: list[Path], registry=None) -> dict[str, DeployTarget]:
    """All targets of the directories; a later directory overrides an earlier one's target of the same name."""
    out: dict[str, DeployTarget] = {}
    for d in dirs:
        seen: dict[str, Path] = {}
        for f in sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
            t = load_target_file(f, registry)
            if t.name in seen:
                raise InputError(f"{f}: field 'name': duplicate target name '{t.name}' (already defined in "
                                 f"{seen[t.name]}); expected unique names")
            seen[t.name] = f
            out[t.name] = t
    return out


def resolve_target(name_or_path: str, cli_dirs: list[str] | None = None, registry=None) -> DeployTarget:
    """`--target` accepts a target name (looked up in the targets directories) or a path to a target file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or os.sep in name_or_path or p.is_file():
        if not p.is_file():
            raise InputError(f"--target: target file not found: {name_or_path}")
        return load_target_file(p, registry)
    dirs = targets_dirs(cli_dirs)
    targets = load_targets(dirs, registry)
    if name_or_path in targets:
        return targets[name_or_path]
    import difflib

    where = ", ".join(str(d) for d in dirs) or f"no targets directory (use --targets-dir or ${ENV_VAR})"
    close = difflib.get_close_matches(name_or_path, list(targets), n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise InputError(f"--target: unknown target '{name_or_path}' in {where}{hint} (see `edge-sdk targets`)")
