"""Facts about this process and machine that a measurement needs: resident memory, CPU model, board."""

import platform
import sys


def _proc_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (IOError, OSError, ValueError, IndexError):
        pass
    return None


def ru_maxrss_mb():
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1048576.0 if sys.platform == "darwin" else maxrss / 1024.0  # bytes on macOS, KiB elsewhere


def peak_rss_mb():
    """(peak MB, source): VmHWM from /proc when there is one, else getrusage's ru_maxrss."""
    hwm = _proc_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024.0, "VmHWM"
    maxrss = ru_maxrss_mb()
    return maxrss, ("ru_maxrss" if maxrss is not None else None)


def current_rss_mb():
    kb = _proc_kb("VmRSS")
    return kb / 1024.0 if kb is not None else None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model", "Processor") and value.strip():
                    return value.strip()
    except (IOError, OSError):
        pass
    return platform.processor() or platform.machine() or None


def board_model():
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return f.read().rstrip(b"\x00\n").decode("utf-8", "replace") or None
    except (IOError, OSError):
        return None
