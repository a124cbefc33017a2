"""`probe [WORKDIR]`: what is this machine, really? (stdlib only)

`targets check` compares these facts with the device profile the target claims to be. Versions come from package
metadata where possible (importing onnxruntime or torch just to read __version__ takes seconds on a small board),
falling back to an import for packages installed without metadata (e.g. TensorRT from Debian packages).

Usage: python3 -m edge_device probe WORKDIR   → prints one JSON object.
"""

import os
import platform
import sys

# python module → distribution names that provide it
PACKAGES = {
    "numpy": ["numpy"],
    "onnxruntime": ["onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                    "onnxruntime-qnn"],
    "ai_edge_litert": ["ai-edge-litert", "ai-edge-litert-nightly"],
    "tflite_runtime": ["tflite-runtime", "tflite_runtime"],
    "tensorrt": ["tensorrt", "tensorrt-cu12", "tensorrt-cu11"],
    "torch": ["torch"],
    "openvino": ["openvino"],
    "executorch": ["executorch"],
}


def _version(module, dists):
    try:
        import importlib.util
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        from importlib import metadata  # Python 3.8+
        for d in dists:
            try:
                return metadata.version(d)
            except metadata.PackageNotFoundError:
                continue
    except ImportError:
        pass
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "unknown"))
    except Exception as exc:  # a broken install is a fact worth reporting, not a crash
        return "broken: %s" % (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except (IOError, OSError):
        pass
    return platform.platform()


def _meminfo():
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                if k in ("MemTotal", "MemAvailable"):
                    out[k] = int(v.split()[0]) * 1024
    except (IOError, OSError, ValueError):
        pass
    return out.get("MemTotal"), out.get("MemAvailable")


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except (IOError, OSError):
        return None
    return int(text) if text.isdigit() else None  # "max" (cgroup v2) = no limit


def cgroup_memory_room():
    """Bytes this process's memory cgroup still allows (limit − usage), or None without a limit: a container
    started with --memory has far less room than MemAvailable says."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except (IOError, OSError):
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2
            base = "/sys/fs/cgroup" + path.rstrip("/")
            limit, used = _read_int(base + "/memory.max"), _read_int(base + "/memory.current")
        elif "memory" in controllers.split(","):  # cgroup v1
            base = "/sys/fs/cgroup/memory" + path.rstrip("/")
            limit, used = _read_int(base + "/memory.limit_in_bytes"), _read_int(base + "/memory.usage_in_bytes")
        else:
            continue
        if limit is not None and used is not None and limit < (1 << 60):  # v1 says "no limit" with ~2^63
            return max(0, limit - used)
    return None


def gpu_memory():
    """[{"index", "name", "total_bytes", "free_bytes"}] from nvidia-smi (discrete NVIDIA GPUs); [] without it."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10,
                             universal_newlines=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) == 4 and f[2].isdigit() and f[3].isdigit():  # MiB; Jetson's nvidia-smi prints [N/A]
            gpus.append({"index": int(f[0]) if f[0].isdigit() else len(gpus), "name": f[1],
                         "total_bytes": int(f[2]) << 20, "free_bytes": int(f[3]) << 20})
    return gpus


def memory():
    """What a model loaded now may use: MemAvailable (and the memory cgroup's room, when it is smaller), and the
    discrete GPUs' free memory. The deploy of a decoder compares its weights + KV cache + runtime with this."""
    total, avail = _meminfo()
    room = cgroup_memory_room()
    usable = avail if room is None or (avail is not None and avail <= room) else room
    return {"mem_total_bytes": total, "mem_available_bytes": avail, "cgroup_room_bytes": room,
            "usable_bytes": usable, "gpus": gpu_memory()}


def _disk(workdir):
    p = os.path.expanduser(workdir)
    if not os.path.isabs(p):
        p = os.path.join(os.path.expanduser("~"), p)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    st = os.statvfs(p)
    return p, st.f_bavail * st.f_frsize


# /proc/cpuinfo flag (x86 "flags", ARM "Features") -> the ISA vocabulary of device profiles (isa_features)
ISA_FLAGS = {
    "sse4_2": "sse4_2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c", "avx512f": "avx512f",
    "avx512bw": "avx512bw", "avx512vl": "avx512vl", "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni",
    "avx512_bf16": "avx512_bf16", "avx512_fp16": "avx512_fp16", "amx_tile": "amx_tile", "amx_bf16": "amx_bf16",
    "amx_int8": "amx_int8", "asimd": "neon", "asimddp": "neon_dotprod", "asimdhp": "neon_fp16",
    "i8mm": "neon_i8mm", "bf16": "neon_bf16", "sve": "sve", "sve2": "sve2",
}


def isa_features(cpuinfo_text=None):
    """ISA features of this CPU in the profiles' vocabulary, sorted (empty when /proc/cpuinfo is unreadable)."""
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo_text = f.read()
        except (IOError, OSError):
            return []
    flags = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return sorted(set(ISA_FLAGS[f] for f in flags if f in ISA_FLAGS))


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def physical_cores(cpus=None, sysfs="/sys/devices/system/cpu"):
    """Physical cores among `cpus` (default: the CPUs this process may run on), SMT siblings counted once, from the
    kernel's CPU topology; the number of CPUs where the topology is not readable."""
    if cpus is None:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        base = "%s/cpu%d/topology/" % (sysfs, cpu)
        try:
            with open(base + "physical_package_id") as f:
                package = f.read().strip()
            with open(base + "core_id") as f:
                cores.add((package, f.read().strip()))
        except (OSError, IOError):
            return len(cpus)
    return len(cores) or len(cpus)


def probe(workdir):
    from .stats import cpu_model

    mem_total, mem_avail = _meminfo()
    disk_path, disk_free = _disk(workdir)
    return {
        "arch": platform.machine(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "cpu_count": usable_cpus(),
        "cpu_model": cpu_model(),
        "isa_features": isa_features(),
        "mem_total_bytes": mem_total,
        "mem_available_bytes": mem_avail,
        "disk_path": disk_path,
        "disk_free_bytes": disk_free,
        "packages": dict((m, _version(m, d)) for m, d in PACKAGES.items()),
    }


facts = probe  # the name the host side uses for these facts (calibration fingerprints, targets check)
