"""`targets check`: is the host behind a target really the device its profile describes, and can it run bundles?

A profile that says aarch64 on a host that is x86_64, 8 GB on a board with 4, or onnxruntime where none is
installed makes every later number (plans, benchmarks, reports) wrong; this finds it before a deploy does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..errors import RemoteError
from ..profiles import DeviceProfile
from ..schemas.bundle import Manifest
from ..schemas.release import RemoteFacts, TargetCheck
from .device import call_json, run_device
from .session import Session, connected
from .targets import DeployTarget

ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8l": "aarch64", "armv7l": "armv7",
                "armhf": "armv7"}
# profile runtime name → python modules that provide it on a device (first found wins)
RUNTIME_MODULES = {"onnxruntime": ["onnxruntime"], "litert": ["ai_edge_litert", "tflite_runtime"],
                   "tensorrt": ["tensorrt"], "pytorch": ["torch"], "openvino": ["openvino"],
                   "executorch": ["executorch"]}
KV_ELEMENT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1}
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


def run_memory(session: Session) -> dict:
    """The device's memory report (`release memory`, device/probe.py memory())."""
    return call_json(session, "release", "memory", payload={}, timeout=min(session.target.command_timeout_s, 60))


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


@dataclass(frozen=True)
class MemoryNeed:
    """What a decoder bundle takes once loaded: its model files, the KV cache at the full context (onnxruntime-genai
    allocates it for max_length up front), and the runtime (the plan's predicted overhead and activations)."""

    weights_bytes: int
    kv_bytes: int
    runtime_bytes: int
    context: int
    batch: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.runtime_bytes

    def describe(self) -> str:
        mb = lambda n: f"{n / 1e6:,.1f} MB"  # noqa: E731
        return (f"{mb(self.total_bytes)} (weights {mb(self.weights_bytes)} + KV cache {mb(self.kv_bytes)} at "
                f"context {self.context}{f' × batch {self.batch}' if self.batch > 1 else ''} + runtime "
                f"{mb(self.runtime_bytes)})")


def decoder_memory_need(manifest: Manifest) -> MemoryNeed | None:
    """The memory a decoder bundle needs on the device; None for encoders (their memory does not grow with use)."""
    art = manifest.primary
    dec = art.decoder
    if dec is None:
        return None
    folder = dec.genai_config.rpartition("/")[0]
    weights = sum(e.size_bytes for rel, e in manifest.files.items() if rel.startswith(folder + "/"))
    kv_dtype = next((t.dtype for t in art.inputs if t.name.startswith("past_key_values")), "float32")
    batch = manifest.plan.batch
    kv = 2 * dec.num_layers * dec.num_kv_heads * dec.head_size * dec.context_length * batch * \
        KV_ELEMENT_BYTES.get(kv_dtype, 4)
    mem = manifest.plan.predicted.memory_mb
    return MemoryNeed(weights_bytes=weights, kv_bytes=kv,
                      runtime_bytes=int((mem.overhead_mb + mem.activations_mb) * 1e6),
                      context=dec.context_length, batch=batch)


def uses_discrete_gpu(profile: DeviceProfile, unit_name: str) -> bool:
    """Does a plan for this compute unit run on a GPU with its own memory (not a Jetson-style unified one)?"""
    try:
        unit = profile.unit(unit_name)
    except (KeyError, ValueError):
        return False
    return unit.kind == "gpu" and not profile.unified_memory


def memory_fit(need: MemoryNeed, memory: dict, discrete_gpu: bool) -> tuple[str | None, str | None, str | None]:
    """(problem, warning, what the device has) from comparing `need` with a device's `memory` report
    (device/probe.py memory())."""
    if discrete_gpu:
        gpus = memory.get("gpus") or []
        if not gpus:
            return None, "GPU memory not checked: nvidia-smi reported no GPU on the device", None
        free = min(g["free_bytes"] for g in gpus)
        where = f"{free / 1e6:,.1f} MB free on its GPU ({gpus[0]['name']}, nvidia-smi)"
    else:
        free = memory.get("usable_bytes")
        if free is None:
            return None, "memory not checked: the device reported no MemAvailable", None
        room = memory.get("cgroup_room_bytes")
        src = "its memory cgroup's limit" if room is not None and room == free else "MemAvailable"
        where = f"{free / 1e6:,.1f} MB available ({src})"
    if need.total_bytes > free:
        return (f"the decoder needs {need.describe()} but the device has {where}; free memory on the device, "
                f"or plan a shorter context (plan --seq-len) or a smaller precision"), None, where
    return None, None, where


def check_target(target: DeployTarget, profile: DeviceProfile, *, accept_new_host_key: bool = False,
                 session: Session | None = None, manifest: Manifest | None = None) -> TargetCheck:
    """Connect, probe, compare. Connection failures raise RemoteError; contradictions are returned, not raised.
    With a decoder bundle's `manifest`: also whether it fits the device's free memory now."""
    t0 = time.monotonic()
    need = decoder_memory_need(manifest) if manifest is not None else None
    with connected(target, session, accept_new_host_key=accept_new_host_key) as s:
        facts = probe(s)
        memory = run_memory(s) if need is not None and facts.python is not None else None
    problems, warnings = contradictions(facts, profile, target)
    bundle_memory = None
    if manifest is not None and need is None:
        warnings.append(f"--bundle: {manifest.model_name} is not a decoder; only decoders' memory is checked "
                        f"(an encoder's does not grow with use)")
    if need is not None and memory is not None:
        problem, warning, have = memory_fit(need, memory, uses_discrete_gpu(profile, manifest.plan.runtime.unit))
        problems += [f"memory: {problem}"] if problem else []
        warnings += [warning] if warning else []
        bundle_memory = need.describe() + (f"; the device has {have}" if have else "")
    return TargetCheck(target=target.name, endpoint=str(s.endpoint), profile=profile.name, ok=not problems,
                       facts=facts, problems=problems, warnings=warnings, bundle_memory=bundle_memory,
                       host_key_accepted=s.accepted_host_key,
                       seconds=round(time.monotonic() - t0, 3))
