"""What is this machine? CPU model, usable cores, ISA flags, memory, caches and clock, read at run time.

Reads /proc/cpuinfo, /proc/meminfo and /sys (cgroup CPU and memory limits included); `root` lets tests point it at a
fixture tree. Never raises: whatever cannot be read is None and named in `HostFacts.not_detected`, and profiles/host.py
keeps the shipped value for it.
"""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

X86_FLAGS = {"sse4_2": "sse4_2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c", "avx512f": "avx512f",
             "avx512_vnni": "avx512_vnni", "avx512_bf16": "avx512_bf16", "avx512_fp16": "avx512_fp16",
             "avx_vnni": "avx_vnni", "amx_bf16": "amx_bf16", "amx_int8": "amx_int8"}
ARM_FLAGS = {"asimd": "neon", "neon": "neon", "asimddp": "neon_dotprod", "asimdhp": "neon_fp16", "i8mm": "neon_i8mm",
             "bf16": "neon_bf16", "sve": "sve", "sve2": "sve2"}
GIB_IN_GB = 1024 ** 3 / 1e9  # /proc/meminfo counts KiB; profiles count GB (1e9 bytes)
VNNI = {"avx512_vnni", "avx_vnni", "amx_int8"}
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64", "armv7l": "armv7",
        "armv7": "armv7", "armv8l": "armv7"}
AMD_FAMILY = {23: "Zen/Zen 2", 25: "Zen 3/Zen 4", 26: "Zen 5"}
ARM_PARTS = {0xd03: "Cortex-A53", 0xd04: "Cortex-A35", 0xd05: "Cortex-A55", 0xd07: "Cortex-A57", 0xd08: "Cortex-A72",
             0xd09: "Cortex-A73", 0xd0a: "Cortex-A75", 0xd0b: "Cortex-A76", 0xd0c: "Neoverse-N1", 0xd0d: "Cortex-A77",
             0xd40: "Neoverse-V1", 0xd41: "Cortex-A78", 0xd42: "Cortex-A78AE", 0xd44: "Cortex-X1", 0xd46: "Cortex-A510",
             0xd47: "Cortex-A710", 0xd49: "Neoverse-N2", 0xd4f: "Neoverse-V2", 0xd80: "Cortex-A520",
             0xd81: "Cortex-A720"}


@dataclass
class HostFacts:
    """What was read from this machine (None = could not be read), and what fell back to the shipped profile."""

    architecture: str | None = None
    cpu_model: str | None = None
    vendor: str | None = None
    family: int | None = None
    microarchitecture: str | None = None
    logical_cpus: int | None = None      # CPUs this process may run on (affinity, capped by the cgroup quota)
    threads_per_core: int = 1
    cores: int | None = None             # physical cores among them: what peak compute counts
    cpu_quota: float | None = None       # cgroup CPU limit in CPUs, when one is set
    flags: set[str] = field(default_factory=set)
    isa_features: list[str] = field(default_factory=list)
    memory_total_gb: float | None = None      # GiB
    memory_available_gb: float | None = None  # GiB
    caches_kb: dict[str, int] = field(default_factory=dict)  # L1d, L1i, L2, L3 per instance
    freq_ghz: float | None = None
    freq_source: str | None = None
    not_detected: list[str] = field(default_factory=list)

    @property
    def has_vnni(self) -> bool:
        return bool(VNNI & set(self.isa_features))

    def isa_summary(self) -> str:
        f = set(self.isa_features)
        if self.architecture == "x86_64":
            parts = ["AVX-512" if "avx512f" in f else "AVX2" if "avx2" in f else "AVX" if "avx" in f else "SSE"]
            parts += [name for flag, name in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"),
                                              ("avx512_fp16", "FP16")) if flag in f]
            if "avx_vnni" in f and "avx512_vnni" not in f:
                parts.append("AVX-VNNI")
            if "amx_int8" in f or "amx_bf16" in f:
                parts.append("AMX")
            if not self.has_vnni:
                parts.append("no VNNI")
            return " ".join(parts[:1]) + ("" if len(parts) == 1 else " " + ", ".join(parts[1:]))
        if self.architecture in ("aarch64", "armv7"):
            extra = [name for flag, name in (("neon_dotprod", "dotprod"), ("neon_i8mm", "i8mm"), ("neon_fp16", "fp16"),
                                             ("neon_bf16", "bf16"), ("sve", "SVE")) if flag in f]
            return "NEON" + (" " + ", ".join(extra) if extra else " (no dotprod)") if "neon" in f else "no NEON"
        return "unknown ISA"

    def summary(self) -> str:
        """One line for `plan --device host` and `devices show host`."""
        model = self.cpu_model or "an unidentified CPU"
        if self.microarchitecture:
            model += f" ({self.microarchitecture})"
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}" if self.cores else "? cores"
        if self.threads_per_core > 1:
            cores += f" ({self.logical_cpus} threads)"
        freq = f" @ {self.freq_ghz:.2g} GHz" if self.freq_ghz else ""
        mem = f", {self.memory_total_gb:.1f} GiB" if self.memory_total_gb else ""
        line = f"host: detected {model}, {cores}{freq}, {self.isa_summary()}{mem}"
        if self.not_detected:
            line += f"; shipped host.yaml values for {', '.join(self.not_detected)}"
        return line

    def fields(self) -> dict[str, str]:
        """The detected facts as short strings (for `devices show host`)."""
        out = {"cpu": self.cpu_model or "?", "architecture": self.architecture or "?"}
        if self.microarchitecture:
            out["microarchitecture"] = self.microarchitecture
        out["cores"] = (f"{self.cores} physical, {self.logical_cpus} usable CPUs, "
                        f"{self.threads_per_core} thread(s)/core"
                        + (f", cgroup quota {self.cpu_quota:g} CPUs" if self.cpu_quota else ""))
        if self.freq_ghz:
            out["frequency"] = f"{self.freq_ghz:.3g} GHz ({self.freq_source})"
        out["isa_features"] = ", ".join(self.isa_features) or "none of the profile's vocabulary"
        if self.memory_total_gb:
            out["memory"] = (f"{self.memory_total_gb:.1f} GiB total ({self.memory_total_gb * GIB_IN_GB:.1f} GB), "
                             f"{self.memory_available_gb or 0:.1f} GiB available")
        if self.caches_kb:
            out["caches"] = ", ".join(f"{k} {_kb(v)}" for k, v in self.caches_kb.items())
        if self.not_detected:
            out["not detected"] = ", ".join(self.not_detected)
        return out


def _kb(kb: int) -> str:
    return f"{kb // 1024} MiB" if kb >= 1024 and kb % 1024 == 0 else f"{kb} KiB"


# ---- reading ---------------------------------------------------------------------------------------------------------

def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def parse_cpuinfo(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(one dict per `processor` block, the header/trailer fields outside blocks, e.g. ARM's `Hardware`/`Model`)."""
    blocks: list[dict[str, str]] = []
    extra: dict[str, str] = {}
    cur: dict[str, str] | None = None
    for line in text.splitlines():
        if ":" not in line:
            if not line.strip():
                cur = None
            continue
        key, _, val = line.partition(":")
        key, val = key.strip().lower(), val.strip()
        if key == "processor" and val.isdigit():
            cur = {}
            blocks.append(cur)
        (cur if cur is not None else extra)[key] = val
    return blocks, extra


def parse_meminfo(text: str) -> dict[str, int]:
    """Field → kB."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def parse_size_kb(text: str) -> int | None:
    """'48K', '1024K', '32M', '1 MiB' → kB."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*$", text.strip(), re.IGNORECASE)
    if not m:
        return None
    return int(float(m.group(1)) * {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024 ** 2}[m.group(2).upper()])


def parse_cpu_list(text: str) -> int:
    """'0-3,8' → 5."""
    n = 0
    for part in text.strip().split(","):
        if "-" in part:
            a, b = part.split("-")
            n += int(b) - int(a) + 1
        elif part.strip():
            n += 1
    return n


def normalise_isa(architecture: str, flags: set[str]) -> list[str]:
    table = X86_FLAGS if architecture == "x86_64" else ARM_FLAGS
    feats = {v for k, v in table.items() if k in flags}
    if architecture == "aarch64":
        feats.add("neon")  # Advanced SIMD is mandatory in AArch64
    order = list(dict.fromkeys(table.values()))
    return [f for f in order if f in feats]


def _cgroup_cpus(root: Path) -> float | None:
    txt = _read(root, "sys/fs/cgroup/cpu.max")  # cgroup v2: "max 100000" or "200000 100000"
    if txt:
        q, _, p = txt.strip().partition(" ")
        if q != "max" and q.isdigit() and p.strip().isdigit() and int(p) > 0:
            return int(q) / int(p)
        return None
    q, p = _read(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read(root, "sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if q and p and int(q) > 0 and int(p) > 0:
            return int(q) / int(p)
    except ValueError:
        pass
    return None


def _cgroup_memory_kb(root: Path) -> int | None:
    for rel in ("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        txt = (_read(root, rel) or "").strip()
        if txt.isdigit() and int(txt) < 1 << 60:  # v1 reports "no limit" as ~2^63
            return int(txt) // 1024
    return None


def _caches(root: Path, cpuinfo0: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    base = root / "sys/devices/system/cpu/cpu0/cache"
    try:
        indexes = sorted(p.name for p in base.iterdir() if p.name.startswith("index"))
    except OSError:
        indexes = []
    for idx in indexes:
        level, kind = _read(base, f"{idx}/level"), _read(base, f"{idx}/type")
        size = parse_size_kb(_read(base, f"{idx}/size") or "")
        if not level or not size:
            continue
        kind = (kind or "").strip().lower()
        name = f"L{level.strip()}" + ("d" if kind == "data" else "i" if kind == "instruction" else "")
        out[name] = size
    if not out and cpuinfo0.get("cache size"):  # x86 /proc/cpuinfo: the last-level size per core, "1024 KB"
        kb = parse_size_kb(cpuinfo0["cache size"].replace(" ", "").upper())
        if kb:
            out["cache"] = kb
    return out


def _freq(root: Path, blocks: list[dict[str, str]]) -> tuple[float | None, str | None]:
    for rel, what in (("cpufreq/cpuinfo_max_freq", "cpuinfo_max_freq"), ("cpufreq/base_frequency", "base_frequency")):
        txt = (_read(root, f"sys/devices/system/cpu/cpu0/{rel}") or "").strip()
        if txt.isdigit() and int(txt) > 0:
            return int(txt) / 1e6, f"max clock from /sys/.../{what}"
    mhz = []
    for b in blocks:
        try:
            mhz.append(float(b.get("cpu mhz", "")))
        except ValueError:
            pass
    if mhz and max(mhz) > 0:
        return max(mhz) / 1000, "'cpu MHz' in /proc/cpuinfo: the nominal clock in a VM, turbo not visible"
    return None, None


def _model_name(arch: str, blocks: list[dict[str, str]], extra: dict[str, str], root: Path) -> str | None:
    b0 = blocks[0] if blocks else {}
    if b0.get("model name") and arch == "x86_64":
        return " ".join(b0["model name"].split())
    board = (_read(root, "proc/device-tree/model") or "").strip("\x00\n ") or extra.get("model")
    part = b0.get("cpu part") or extra.get("cpu part")
    core = None
    if part:
        try:
            core = ARM_PARTS.get(int(part, 16))
        except ValueError:
            core = None
    name = core or b0.get("model name") or extra.get("hardware")
    if board and name:
        return f"{board}, {name}"
    return board or name


def detect(root: str | Path = "/", machine: str | None = None) -> HostFacts:
    """Read this machine (or a copy of its /proc and /sys under `root`, for tests). Never raises."""
    root = Path(root)
    facts = HostFacts()
    live = root == Path("/")
    try:
        facts.architecture = ARCH.get((machine or platform.machine() or "").lower())
    except Exception:  # noqa: BLE001 - detection must never crash
        facts.architecture = None
    if facts.architecture is None:
        facts.not_detected.append("architecture")

    blocks, extra = parse_cpuinfo(_read(root, "proc/cpuinfo") or "")
    b0 = blocks[0] if blocks else {}
    flags = set((b0.get("flags") or b0.get("features") or extra.get("features") or "").split())
    facts.flags = flags
    if facts.architecture and flags:
        facts.isa_features = normalise_isa(facts.architecture, flags)
    else:
        facts.not_detected.append("isa_features")
    facts.vendor = b0.get("vendor_id") or None
    try:
        facts.family = int(b0["cpu family"]) if "cpu family" in b0 else None
    except ValueError:
        facts.family = None
    if facts.architecture:
        facts.cpu_model = _model_name(facts.architecture, blocks, extra, root)
    if facts.vendor == "AuthenticAMD" and facts.family in AMD_FAMILY:
        uarch = AMD_FAMILY[facts.family]
        if facts.family == 25:
            uarch = "Zen 4" if "avx512f" in flags else "Zen 3"
        facts.microarchitecture = f"{uarch}, family {facts.family}"
    if not facts.cpu_model:
        facts.not_detected.append("cpu model")

    # cores: affinity (this process), capped by a cgroup quota, divided by SMT siblings
    try:
        logical = len(os.sched_getaffinity(0)) if live else len(blocks) or None
    except (AttributeError, OSError):
        logical = os.cpu_count() if live else None
    facts.cpu_quota = _cgroup_cpus(root)
    if logical and facts.cpu_quota:
        logical = max(1, min(logical, int(facts.cpu_quota + 0.999)))
    facts.logical_cpus = logical
    siblings = _read(root, "sys/devices/system/cpu/cpu0/topology/thread_siblings_list")
    try:
        if siblings:
            facts.threads_per_core = max(1, parse_cpu_list(siblings))
        elif b0.get("siblings") and b0.get("cpu cores"):
            facts.threads_per_core = max(1, int(b0["siblings"]) // max(1, int(b0["cpu cores"])))
    except ValueError:
        facts.threads_per_core = 1
    if logical:
        facts.cores = max(1, logical // facts.threads_per_core)
    else:
        facts.not_detected.append("cores")

    mem = parse_meminfo(_read(root, "proc/meminfo") or "")
    if mem.get("MemTotal"):
        total_kb = mem["MemTotal"]
        limit = _cgroup_memory_kb(root)
        if limit:
            total_kb = min(total_kb, limit)
        avail_kb = min(mem.get("MemAvailable", mem.get("MemFree", total_kb)), total_kb)
        facts.memory_total_gb = total_kb / 1024 ** 2
        facts.memory_available_gb = avail_kb / 1024 ** 2
    else:
        facts.not_detected.append("memory")

    facts.caches_kb = _caches(root, b0)
    if not facts.caches_kb:
        facts.not_detected.append("cache sizes")
    facts.freq_ghz, facts.freq_source = _freq(root, blocks)
    if facts.freq_ghz is None:
        facts.not_detected.append("frequency (so peak compute)")
    return facts


@functools.lru_cache(maxsize=1)
def detect_this_machine() -> HostFacts:
    """Detected once per process, so every plan in one run sees the same numbers."""
    return detect("/")
