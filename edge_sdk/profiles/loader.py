"""Finding, loading and resolving device profiles (shipped + user directories)."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from ..errors import InputError
from ..schemas.profile import DeviceClass, DeviceProfile

if TYPE_CHECKING:  # pragma: no cover
    from .host import HostFacts

ENV_VAR = "EDGE_SDK_PROFILES"
HOST_ENV_VAR = "EDGE_SDK_HOST_PROFILE"  # live (default): detect this machine; static: the shipped host.yaml as it is
HOST_MODES = ("live", "static")


def shipped_profiles_dir() -> Path:
    """`device_profiles/` at the repository root (the package is installed editable by ./demo and ./test)."""
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "device_profiles", here.parents[1] / "data" / "device_profiles"):
        if cand.is_dir():
            return cand
    raise InputError("cannot find the shipped device_profiles/ directory next to the edge_sdk package")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory; expected a YAML file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file (expected YAML)") from None


def _parse(path: Path, text: str, compose: bool = False):
    """yaml.safe_load (or the node tree, whose marks carry line numbers), a syntax error as one InputError."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader) if compose else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}:{where}: malformed YAML: {problem}") from None


def read_yaml(path: Path) -> object:
    """Parse one YAML file, turning syntax errors into a one-line InputError naming file and line."""
    return _parse(path, _read_text(path))


def _node_at(root, loc: tuple) -> tuple[object, bool]:
    """(the YAML node a pydantic error location points at, or the deepest existing one; whether it was found).
    A `[key]` part (a bad mapping key) points at the key itself."""
    node, key = root, None
    for part in loc:
        if part == "[key]" and key is not None:
            return key, True
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            pair = (None, node.value[part])
        else:
            pair = None
        if pair is None:
            return node, False
        key, node = pair
    return node, True


def _key_node(root, loc: tuple):
    """The node of the key at the end of `loc` (an unknown field is named by its key's line)."""
    parent, _ = _node_at(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        return next((k for k, _ in parent.value if k.value == str(loc[-1])), parent)
    return parent


def _problem(path: Path, root, err: dict, msg: str | None = None) -> tuple[int, str]:
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "extra_forbidden" and loc:
        node, line_known = _key_node(root, loc), True
    else:
        node, line_known = _node_at(root, loc)
        line_known = line_known or len(loc) > 1  # a missing field: its mapping's line, except for the top level
    line = node.start_mark.line + 1 if line_known and root is not None and loc else None
    text = msg or err.get("msg", "invalid").removeprefix("Value error, ")
    got = err.get("input")
    got_s = f" (got {got!r})" if got is not None and not isinstance(got, (dict, list)) and msg is None else ""
    where = f"{path}:{line}" if line else str(path)
    dotted = ".".join(str(p) for p in loc if p != "[key]")
    return (line or 0, f"{where}: field '{dotted}': {text}{got_s}" if dotted else f"{where}: {text}")


def profile_problems(exc: ValidationError, path: Path, text: str) -> list[str]:
    """Every validation error of a profile file, each with its line, in file order. An unknown key next to a
    missing required field with a close name is one problem (a typo), naming both."""
    root = _parse(path, text, compose=True)
    errs = list(exc.errors())
    missing = [tuple(e["loc"]) for e in errs if e.get("type") == "missing" and e.get("loc")]
    typo_of: dict[tuple, str] = {}  # the loc of an unknown key → the missing field it misspells
    for e in errs:
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "extra_forbidden" and loc:
            near = [str(m[-1]) for m in missing if m[:-1] == loc[:-1] and m not in typo_of.values()]
            close = difflib.get_close_matches(str(loc[-1]), near, n=1, cutoff=0.75)
            if close:
                typo_of[loc] = loc[:-1] + (close[0],)
    out: list[tuple[int, str]] = []
    for e in errs:
        loc = tuple(e.get("loc", ()))
        if loc in typo_of:
            out.append(_problem(path, root, e, f"unknown field: did you mean '{typo_of[loc][-1]}'? (a required "
                                               f"field that is missing; fields are named as in `edge-sdk devices "
                                               f"schema`)"))
        elif e.get("type") == "extra_forbidden" and loc:
            out.append(_problem(path, root, e, "Extra inputs are not permitted: unknown field (`edge-sdk devices "
                                               "schema` lists the fields)"))
        elif loc not in typo_of.values():
            out.append(_problem(path, root, e))
    return [m for _, m in sorted(out, key=lambda x: x[0])]


def check_profile_file(path: str | Path) -> tuple[DeviceProfile | None, list[str]]:
    """(the profile, []) or (None, every problem, each naming the file, line and field)."""
    path = Path(path)
    text = _read_text(path)
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a YAML mapping with DeviceProfile fields, got {type(data).__name__}")
    try:
        return DeviceProfile.model_validate(data), []
    except ValidationError as exc:
        return None, profile_problems(exc, path, text)


def load_profile_file(path: str | Path) -> DeviceProfile:
    prof, problems = check_profile_file(path)
    if prof is None:
        more = (f" [+{len(problems) - 1} more; `edge-sdk devices validate {path}` lists every one]"
                if len(problems) > 1 else "")
        raise InputError(problems[0] + more)
    return prof


def _profile_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"{directory}: profiles directory does not exist")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


@dataclass
class ProfileRegistry:
    profiles: dict[str, DeviceProfile]
    origin: dict[str, Path]
    notes: dict[str, str] = field(default_factory=dict)   # name → what `resolve` says about it (live detection)
    detected: dict[str, HostFacts] = field(default_factory=dict)  # name → what was read for a live profile

    def names(self) -> list[str]:
        return list(self.profiles)

    def by_class(self, device_class: str) -> list[DeviceProfile]:
        return [p for p in self.profiles.values() if p.device_class.value == device_class]

    def resolve(self, name: str) -> tuple[DeviceProfile, str | None]:
        """Resolve a name or alias. Returns (profile, note): how an alias resolved, and what was detected for a
        live profile (None when there is nothing to say)."""
        key = name.strip().lower()
        if key in self.profiles:
            return self.profiles[key], self.notes.get(key)
        alias_hits = [p for p in self.profiles.values() if key in (a.lower() for a in p.aliases)]
        if len(alias_hits) == 1:
            p = alias_hits[0]
            how = f"'{name}' is an alias for '{p.name}' ({p.display_name})"
            return p, f"{how}; {self.notes[p.name]}" if p.name in self.notes else how
        prefix = sorted(n for n in self.profiles if n.startswith(key) or key in n.split("-"))
        if len(prefix) == 1 and not alias_hits:
            p = self.profiles[prefix[0]]
            return p, f"'{name}' matched '{p.name}' ({p.display_name})"
        candidates = sorted({p.name for p in alias_hits} | set(prefix))
        if candidates:
            raise InputError(f"device '{name}' is ambiguous: it matches {', '.join(candidates)}; "
                             f"pass one of those names")
        alias_of = {a.lower(): p.name for p in self.profiles.values() for a in p.aliases}
        close = difflib.get_close_matches(key, list(self.profiles) + list(alias_of), n=4, cutoff=0.4)
        close = [f"{c} (alias of {alias_of[c]})" if c in alias_of and c not in self.profiles else c for c in close]
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise InputError(f"unknown device '{name}'{hint} (see `edge-sdk devices`)")

    def select(self, spec: str) -> list[DeviceProfile]:
        """`all`, a device class, or a comma-separated list of names/aliases."""
        key = spec.strip().lower()
        if key == "all":
            return list(self.profiles.values())
        if key in DeviceClass.__members__:
            return self.by_class(key)
        return [self.resolve(part)[0] for part in spec.split(",") if part.strip()]


def host_mode(host_profile: str | None = None) -> str:
    mode = (host_profile or os.environ.get(HOST_ENV_VAR) or "live").strip().lower()
    if mode not in HOST_MODES:
        where = "host_profile" if host_profile else f"${HOST_ENV_VAR}"
        raise InputError(f"{where}: expected one of {', '.join(HOST_MODES)}, got {mode!r}")
    return mode


def load_registry(extra_dirs: list[str | Path] | None = None, *, include_env: bool = True,
                  host_profile: str | None = None) -> ProfileRegistry:
    """Shipped profiles, then EDGE_SDK_PROFILES dirs (os.pathsep-separated), then `extra_dirs`.

    A later directory overrides a shipped profile of the same name; the same name twice in one directory is an error.
    The shipped `host` is replaced by this machine's live profile (profiles/host.py) unless `host_profile="static"`
    or $EDGE_SDK_HOST_PROFILE=static; a user's own `host.yaml` wins over both.
    """
    mode = host_mode(host_profile)
    dirs: list[Path] = [shipped_profiles_dir()]
    if include_env and os.environ.get(ENV_VAR):
        dirs += [Path(d) for d in os.environ[ENV_VAR].split(os.pathsep) if d]
    dirs += [Path(d) for d in (extra_dirs or [])]
    profiles: dict[str, DeviceProfile] = {}
    origin: dict[str, Path] = {}
    for d in dirs:
        seen_here: dict[str, Path] = {}
        for f in _profile_files(d):
            prof = load_profile_file(f)
            if prof.name in seen_here:
                raise InputError(f"{f}: field 'name': duplicate profile name '{prof.name}' "
                                 f"(already defined in {seen_here[prof.name]}); expected unique names")
            seen_here[prof.name] = f
            profiles[prof.name] = prof
            origin[prof.name] = f
    reg = ProfileRegistry(profiles=profiles, origin=origin)
    if mode == "live" and "host" in profiles and origin["host"].parent == dirs[0]:
        from .host import host_profile as live_host

        prof, facts = live_host(profiles["host"])
        if facts is not None:
            reg.profiles["host"], reg.detected["host"] = prof, facts
            reg.notes["host"] = facts.summary()
        else:
            reg.notes["host"] = "host: could not detect this machine; using the shipped device_profiles/host.yaml"
    return reg
