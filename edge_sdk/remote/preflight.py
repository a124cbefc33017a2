"""`targets check`: is the host behind a target really the device its profile describes, and can it run bundles?

A profile that says aarch64 on a host that is x86_64, 8 GB on a board with 4, or onnxruntime where none is
installed makes every later number (plans, benchmarks, reports) wrong; this finds it before a deploy does.
"""

from __future__ import annotations

import json
import time

from ..errors import RemoteError
from ..profiles import DeviceProfile
from ..schemas.release import RemoteFacts, TargetCheck
from .device import run_device
from .session import Session, connected
from .targets import DeployTarget

ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8l": "aarch64", "armv7l": "armv7",
                "armhf": "armv7"}
# profile runtime name → python modules that provide it on a device (first found wins)
RUNTIME_MODULES = {"onnxruntime": ["onnxruntime"], "litert": ["ai_edge_litert", "tflite_runtime"],
                   "tensorrt": ["tensorrt"], "pytorch": ["torch"], "openvino": ["openvino"],
                   "executorch": ["executorch"]}
MEMORY_SHORTFALL = 0.85  # MemTotal is below the marketing size (firmware/GPU carve-outs); less than this is wrong
LOW_DISK_BYTES = 1 << 30
GIB = 1 << 30


def probe(session: Session) -> RemoteFacts:
    """`edge_device probe` with the target's python; without python, fall back to `uname` for what it can say."""
    t = session.target
    res = run_device(session, "probe", t.remote_workdir, timeout=min(t.command_timeout_s, 120))
    if res.rc == 0:
        try:
            return RemoteFacts.model_validate(json.loads(res.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError) as exc:
            raise RemoteError(f"device probe on {t.name} printed something unexpected: {exc}") from None
    uname = session.run(["uname", "-m", "-s", "-r"], timeout=30)
    parts = uname.stdout.split()
    return RemoteFacts(arch=parts[-1] if parts else "unknown", os=parts[0] if parts else "unknown",
                       kernel=parts[1] if len(parts) > 2 else None, python=None)


def contradictions(facts: RemoteFacts, profile: DeviceProfile, target: DeployTarget) -> tuple[list[str], list[str]]:
    """(problems, warnings) from comparing measured facts with the profile's claims."""
    problems: list[str] = []
    warnings: list[str] = []
    arch = ARCH_ALIASES.get(facts.arch, facts.arch)
    if arch != profile.architecture:
        problems.append(f"architecture: profile '{profile.name}' says {profile.architecture}, host is {facts.arch}")
    if facts.python is None:
        problems.append(f"python: '{target.python}' not found on the host (target field 'python')")
        return problems, warnings
    if facts.mem_total_bytes:
        have = facts.mem_total_bytes / GIB
        if have < MEMORY_SHORTFALL * profile.memory_total_gb:
            problems.append(f"memory: profile '{profile.name}' says {profile.memory_total_gb:g} GB, host has "
                            f"{have:.1f} GiB")
        elif have > 2 * profile.memory_total_gb:
            warnings.append(f"memory: host has {have:.1f} GiB, twice the profile's {profile.memory_total_gb:g} GB "
                            f"(is this the right profile?)")
    pk = facts.packages
    if not pk.get("numpy"):
        problems.append("numpy: not installed for the target's python (the on-device runner needs it)")
    checkable, found = [], []
    for rt in profile.runtimes:
        mods = RUNTIME_MODULES.get(rt.name)
        if not mods:
            continue
        checkable.append(rt.name)
        have = next(((m, pk.get(m)) for m in mods if pk.get(m)), None)
        if have is None:
            continue
        mod, ver = have
        if ver.startswith("broken"):
            warnings.append(f"{rt.name}: {mod} is installed but fails to import ({ver})")
            continue
        found.append(rt.name)
        want = ".".join((rt.version or "").split(".")[:2])
        if want and not (ver == want or ver.startswith(want + ".")):
            warnings.append(f"{rt.name}: profile lists version {rt.version}, host has {mod} {ver}")
    if checkable and not found:
        mods = sorted({m for n in checkable for m in RUNTIME_MODULES[n]})
        problems.append(f"runtime: none of the profile's runtimes is installed ({', '.join(sorted(set(checkable)))}); "
                        f"looked for python modules {', '.join(mods)}")
    if facts.disk_free_bytes is not None and facts.disk_free_bytes < LOW_DISK_BYTES:
        warnings.append(f"disk: only {facts.disk_free_bytes / GIB:.2f} GiB free at {facts.disk_path}")
    return problems, warnings


def check_target(target: DeployTarget, profile: DeviceProfile, *, accept_new_host_key: bool = False,
                 session: Session | None = None) -> TargetCheck:
    """Connect, probe, compare. Connection failures raise RemoteError; contradictions are returned, not raised."""
    t0 = time.monotonic()
    with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
        facts = probe(s)
    problems, warnings = contradictions(facts, profile, target)
    return TargetCheck(target=target.name, endpoint=str(s.endpoint), profile=profile.name, ok=not problems,
                       facts=facts, problems=problems, warnings=warnings, host_key_accepted=s.accepted_host_key,
                       seconds=round(time.monotonic() - t0, 3))
