"""The live `host` profile: what this machine's CPU, cores, ISA, memory and caches are, read at run time.

The shipped `device_profiles/host.yaml` describes one particular VM; the machines edge-sdk runs on differ (AVX2 without
VNNI, AVX-512 VNNI, AMX, ARM with or without dot product), and the planner's int8 advice and peaks depend on exactly
that. So `host` is detected from /proc/cpuinfo, /proc/meminfo and /sys (cgroup limits included) and merged onto the
shipped YAML, which stays the template for what cannot be read here (memory bandwidth, efficiencies, runtimes).
Detection never raises: whatever cannot be read keeps the shipped value and is listed in `HostFacts.not_detected`.

Peak compute is cores × GHz × ops/cycle/core (one MAC = 2 ops). Ops per cycle per core, from the instruction widths and
issue rates in the sources below; the rows marked *assumption* are ours, calibration measures the real fraction:

| ISA (x86)                           | fp32 | int8            | bf16        | fp16   |
|-------------------------------------|------|-----------------|-------------|--------|
| SSE only                            | 8    | 1.5 × fp32 (e)  | -           | -      |
| AVX, no FMA (1 add + 1 mul, 256-bit)| 16   | 1.5 × fp32 (e)  | -           | -      |
| AVX2 + FMA (2 × 256-bit FMA)        | 32   | 1.5 × fp32 (e)  | -           | -      |
| AVX-512, 2 × 512-bit FMA (a)        | 64   | as below        | -           | -      |
| + VNNI (avx512_vnni / avx_vnni)     |      | 4 × fp32        |             |        |
| + avx512_bf16 / avx512_fp16         |      |                 | 2 × fp32    | 2 × fp32 |
| + AMX (tdpbusd / tdpbf16ps)         |      | 2048            | 1024        | -      |

| ISA (ARM)                                       | fp32 | int8          | bf16/fp16 |
|-------------------------------------------------|------|---------------|-----------|
| NEON, ARMv8.0 class (no dotprod) (a)            | 8    | 2 × fp32 (e)  | -         |
| NEON with dotprod (2 × 128-bit FMA pipes) (a)   | 16   | 4 × fp32 (sdot)| 2 × fp32 |
| + i8mm (smmla)                                  |      | 8 × fp32 (a)  |           |

- fp32 FLOP/cycle for SSE/AVX/AVX2+FMA/AVX-512: source X1. (a) *assumption*: AVX-512 runs on two 512-bit FMA units on
  Xeon (Gold/Platinum) and AMD family 26 (Zen 5 server/desktop; mobile Zen 5 double-pumps); one unit on Intel client
  parts and AMD family 25 (Zen 4 splits 512-bit ops into two 256-bit halves) → 32. ARM pipe counts are Cortex-A76/A78
  class (two 128-bit pipes) vs A53/A55 class (one).
- VNNI: vpdpbusd multiplies 4 u8×s8 pairs per 32-bit lane and accumulates in int32 (8 ops per lane vs 2 for an fp32
  FMA) at the FMA's issue rate (source X2): 4 × fp32. AVX-512 BF16 vdpbf16ps: 2 bf16 MACs per lane → 2 × fp32 (X2).
- AMX: one tile multiply unit per core, 1024 int8 MAC/cycle (2048 ops) and 512 bf16 MAC/cycle (1024 ops) (X3).
- ARM sdot: 4 int8 MACs per 32-bit lane (X4) → 4 × fp32; smmla 8 × fp32 assumes sdot's issue rate.
- (e) *estimate*: without VNNI x86 int8 needs vpmaddubsw + vpmaddwd + vpaddd per 32 MACs (int16 intermediates), and ARM
  without dotprod widens with smlal; ~1.5 × / 2 × fp32 in practice (the shipped host.yaml's figure, to which its
  efficiencies were fitted).
"""

from __future__ import annotations

from ..schemas.profile import Confidence, DeviceProfile, Efficiency, Source
from .host_detect import (GIB_IN_GB, VNNI, HostFacts, _kb, detect,  # noqa: F401 - detect: for callers of host
                          detect_this_machine)

LIVE_SOURCE_ID = "LIVE"
LIVE_SOURCE = Source(id=LIVE_SOURCE_ID, title="detected on this machine at run time from /proc/cpuinfo, /proc/meminfo "
                                              "and /sys (edge-sdk profiles/host.py)")
PEAK_SOURCES = [
    Source(id="X1", title="FLOP/cycle per core for SSE, AVX, AVX2+FMA, AVX-512 (Haswell/Skylake-SP answers)",
           url="https://stackoverflow.com/questions/15655835/"
               "flops-per-cycle-for-sandy-bridge-and-haswell-sse2-avx-avx2"),
    Source(id="X2", title="Intel Intrinsics Guide: _mm512_dpbusd_epi32 (VPDPBUSD), _mm512_dpbf16_ps (VDPBF16PS): "
                          "operation, latency and throughput",
           url="https://www.intel.com/content/www/us/en/docs/intrinsics-guide/index.html"),
    Source(id="X3", title="Intel 64 and IA-32 Architectures Optimization Reference Manual, AMX chapter: 2048 int8 / "
                          "1024 bf16 ops per cycle per core",
           url="https://www.intel.com/content/www/us/en/developer/articles/technical/intel-sdm.html"),
    Source(id="X4", title="Arm A64 instruction set: SDOT (vector), SMMLA",
           url="https://developer.arm.com/documentation/ddi0602/latest/SIMD-FP-Instructions"),
]

VNNI_SOURCE = Source(id="TZ4", title="Measured by this project on a 2-vCPU AMD EPYC Zen 4 VM (AVX-512 VNNI), 2026-11: "
                                      "MiniLM batch 1, 2 threads, padded to 128, one process, interleaved "
                                      "(benchmarks/peer_comparison.py): OpenVINO + NNCF int8 7.15 ms, OpenVINO fp32 "
                                      "10.4, onnxruntime dynamic int8 12.8")
# Runtime efficiencies differ by ISA class, not only peaks: the shipped host.yaml's are fitted on an x86 CPU without
# VNNI (a Zen 3), where NNCF's int8 IR runs 1.3x slower than OpenVINO's own fp32 and onnxruntime's dynamic int8 is the
# fastest recipe. With VNNI the ranking flips: on a 2-vCPU Zen 4 (AVX-512 VNNI) OpenVINO + NNCF int8 ran MiniLM padded
# to 128 in 7.15 ms against onnxruntime dynamic int8's 12.8 and OpenVINO fp32's 10.4 (benchmarks/peer_comparison.py,
# 2026-11). These are the efficiencies the planner used before the split, which rank that machine's recipes in its
# measured order at the top (OpenVINO int8 first); they are not a fit (that VM's clock was not recorded, so its peak is
# unknown): `edge-sdk calibrate --local` measures the machine's own.
VNNI_RUNTIME_EFFICIENCY: dict[str, dict[str, Efficiency]] = {
    "onnxruntime": {},  # the CPU unit's efficiency
    "litert": {"fp32": Efficiency(compute=0.67, memory=0.7, per_op_overhead_us=6),
               "int8": Efficiency(compute=0.35, memory=0.7, per_op_overhead_us=6)},
    "openvino": {"fp32": Efficiency(compute=0.9, memory=0.7, per_op_overhead_us=3),
                 "int8": Efficiency(compute=0.9, memory=0.7, per_op_overhead_us=3)},
}


# ---- deriving --------------------------------------------------------------------------------------------------------

def ops_per_cycle(facts: HostFacts) -> dict[str, float]:
    """Ops per cycle per core by precision (see the module docstring for the table and its sources)."""
    f, arch = set(facts.isa_features), facts.architecture
    if arch == "x86_64":
        if "avx512f" in f:
            two_units = (facts.vendor == "AuthenticAMD" and (facts.family or 0) >= 26) or \
                        (facts.vendor == "GenuineIntel" and "xeon" in (facts.cpu_model or "").lower())
            fp32 = 64.0 if two_units else 32.0
        elif "avx2" in f and "fma" in f:
            fp32 = 32.0
        elif "avx" in f:
            fp32 = 16.0
        else:
            fp32 = 8.0
        out = {"fp32": fp32, "int8": 4 * fp32 if VNNI & f else 1.5 * fp32}
        if "avx_vnni" in f and "avx512_vnni" not in f:
            out["int8"] = 4 * min(fp32, 32.0)  # 256-bit VNNI only
        if "amx_int8" in f:
            out["int8"] = 2048.0
        if "amx_bf16" in f:
            out["bf16"] = 1024.0
        elif "avx512_bf16" in f:
            out["bf16"] = 2 * fp32
        if "avx512_fp16" in f:
            out["fp16"] = 2 * fp32
        return out
    if arch in ("aarch64", "armv7"):
        fp32 = 16.0 if "neon_dotprod" in f else 8.0
        int8 = 8 * fp32 if "neon_i8mm" in f else 4 * fp32 if "neon_dotprod" in f else 2 * fp32
        out = {"fp32": fp32, "int8": int8}
        if "neon_fp16" in f:
            out["fp16"] = 2 * fp32
        if "neon_bf16" in f:
            out["bf16"] = 2 * fp32
        return out
    return {}


def peak_tops(facts: HostFacts) -> dict[str, float]:
    if not facts.cores or not facts.freq_ghz or "isa_features" in facts.not_detected:
        return {}
    return {p: round(facts.cores * facts.freq_ghz * ops / 1000, 4) for p, ops in ops_per_cycle(facts).items()}


def describe(facts: HostFacts) -> str:
    """A description that is true for the detected CPU: what int8 and fp16 buy on it."""
    f = set(facts.isa_features)
    head = f"Detected at run time: {facts.cpu_model or 'this CPU'}, {facts.cores or '?'} cores, {facts.isa_summary()}."
    if facts.architecture == "x86_64":
        if "amx_int8" in f:
            i8 = ("AMX-INT8 tiles (tdpbusd, 2048 int8 ops/cycle/core) and AVX-512 VNNI: int8 GEMMs accumulate in "
                  "int32 with full 8-bit weights, far above the fp32 peak where the runtime has AMX kernels.")
        elif "avx512_vnni" in f:
            i8 = "AVX-512 VNNI: int8 GEMMs (vpdpbusd, int32 accumulation, full 8-bit weights) run at up to 4× fp32."
        elif "avx_vnni" in f:
            i8 = ("AVX-VNNI (256-bit): int8 GEMMs (vpdpbusd, int32 accumulation, full 8-bit weights) run at up to "
                  "4× fp32.")
        else:
            i8 = ("No VNNI: int8 GEMMs use vpmaddubsw (int16 intermediate sums, 7-bit weights), so int8 buys size more "
                  "than speed.")
        if "avx512_fp16" in f:
            f16 = "AVX-512 FP16: fp16 arithmetic is native."
        elif "f16c" in f:
            f16 = "F16C converts fp16 but there is no fp16 arithmetic, so fp16 buys size only."
        else:
            f16 = "No fp16 support: fp16 buys size only."
        bf = " bf16 dot products run natively (AVX-512 BF16/AMX)." if {"avx512_bf16", "amx_bf16"} & f else ""
        return f"{head} {i8} {f16}{bf}"
    if facts.architecture in ("aarch64", "armv7"):
        if "neon_i8mm" in f:
            i8 = "NEON dot product and i8mm (sdot, smmla): int8 GEMMs run at up to 4-8× fp32."
        elif "neon_dotprod" in f:
            i8 = "NEON dot product (sdot): int8 GEMMs run at up to 4× fp32."
        else:
            i8 = "NEON without dot product: int8 GEMMs widen through int16, so int8 buys size more than speed."
        f16 = ("FP16 arithmetic (asimdhp): fp16 runs natively at 2× fp32." if "neon_fp16" in f else
               "No fp16 arithmetic: fp16 buys size only.")
        return f"{head} {i8} {f16}"
    return f"{head} ISA not recognised: peaks are the shipped profile's."


def _peak_source(facts: HostFacts, precision: str, ops: float) -> str:
    if facts.architecture != "x86_64":
        return "X1" if precision == "fp32" else "X4"
    if ops >= 1024:
        return "X3"
    return "X2" if precision in ("bf16", "int8") and (precision == "bf16" or facts.has_vnni) else "X1"


def live_profile(shipped: DeviceProfile, facts: HostFacts) -> DeviceProfile:
    """The shipped host profile with every detected field replaced (and cited as LIVE); the rest stays shipped."""
    data = shipped.model_dump(mode="json")
    cites: dict[str, dict] = dict(data.get("citations") or {})
    live = {"source": LIVE_SOURCE_ID, "confidence": Confidence.measured.value}

    def cite(path: str, note: str) -> None:
        cites[path] = {**live, "note": note}

    if facts.architecture:
        data["architecture"] = facts.architecture
        cite("architecture", "platform.machine()")
    if facts.isa_features or "isa_features" not in facts.not_detected:
        data["isa_features"] = facts.isa_features
        cite("isa_features", "flags/Features in /proc/cpuinfo, normalised (edge_sdk/profiles/host.py)")
    if facts.memory_total_gb:
        total_gb = facts.memory_total_gb * GIB_IN_GB
        data["memory_total_gb"] = round(total_gb, 1)
        usable = round(min(0.8 * (facts.memory_available_gb or facts.memory_total_gb) * GIB_IN_GB, total_gb), 1)
        data["memory_usable_gb"] = max(0.1, usable)
        cite("memory_total_gb", "MemTotal in /proc/meminfo (KiB → GB; capped by the cgroup memory limit)")
        cites["memory_usable_gb"] = {"source": LIVE_SOURCE_ID, "confidence": Confidence.derived.value,
                                     "note": "0.8 × MemAvailable at start-up (the rest for the OS and other processes)"}
    unit_i = next((i for i, u in enumerate(data["compute_units"]) if u["kind"] == "cpu"), None)
    peaks = peak_tops(facts)
    if unit_i is not None:
        unit = data["compute_units"][unit_i]
        if facts.cores:
            unit["count"] = facts.cores
            cite(f"compute_units.{unit_i}.count", "physical cores this process may use (affinity, cgroup quota, SMT)")
        if peaks:
            prec = ["fp32", "int8"] + [p for p in ("bf16", "fp16") if p in peaks]
            unit["precisions"] = prec + [p for p in unit["precisions"] if p not in prec and p not in ("bf16", "fp16")]
            unit["peak_tops_dense"] = peaks
            opc = ops_per_cycle(facts)
            for p in peaks:
                cites[f"compute_units.{unit_i}.peak_tops_dense.{p}"] = {
                    "source": _peak_source(facts, p, opc[p]), "confidence": Confidence.derived.value,
                    "note": f"{facts.cores} cores × {facts.freq_ghz:.3g} GHz × {opc[p]:g} ops/cycle "
                            f"(table in edge_sdk/profiles/host.py)"}
        caches = ", ".join(f"{k} {_kb(v)}" for k, v in facts.caches_kb.items())
        unit["description"] = (f"{facts.cores or '?'} core(s) of {facts.cpu_model or 'this CPU'}"
                               + (f" @ {facts.freq_ghz:.3g} GHz" if facts.freq_ghz else "")
                               + (f"; caches {caches}" if caches else ""))
    vnni = facts.architecture == "x86_64" and facts.has_vnni
    if vnni:
        for i, rt in enumerate(data["runtimes"]):
            if rt["name"] in VNNI_RUNTIME_EFFICIENCY and rt.get("unit") in (None, "cpu"):
                effs = VNNI_RUNTIME_EFFICIENCY[rt["name"]]
                rt["efficiency"] = {k: e.model_dump(mode="json") for k, e in effs.items()}
                cites[f"runtimes.{i}.efficiency"] = {
                    "source": VNNI_SOURCE.id, "confidence": Confidence.unverified.value,
                    "note": "this CPU has VNNI: the x86-with-VNNI efficiencies (edge_sdk/profiles/host.py), not the "
                            "shipped file's, which are fitted without VNNI"}
    data["description"] = describe(facts)
    model = facts.cpu_model or "this machine"
    data["display_name"] = f"This machine: {model} ({facts.cores or '?'} cores, detected)"
    ids = {s["id"] for s in data.get("sources") or []}
    data["sources"] = list(data.get("sources") or []) + [
        s.model_dump(mode="json") for s in [LIVE_SOURCE, *PEAK_SOURCES, *([VNNI_SOURCE] if vnni else [])]
        if s.id not in ids]
    data["citations"] = cites
    return DeviceProfile.model_validate(data)


def host_profile(shipped: DeviceProfile, facts: HostFacts | None = None) -> tuple[DeviceProfile, HostFacts | None]:
    """(live profile, facts), or (shipped, None) when detection or merging fails for any reason."""
    try:
        facts = facts or detect_this_machine()
        return live_profile(shipped, facts), facts
    except Exception:  # noqa: BLE001 - a detection bug must never stop planning; the shipped profile still works
        return shipped, None
