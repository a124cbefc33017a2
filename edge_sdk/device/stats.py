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


# ----------------------------------------------------------------------------------------------- spread of a median

CI_METHOD = ("distribution-free: order statistics x(l)..x(n-l+1) of the sorted samples, l the largest rank with "
             "P(Binomial(n, 1/2) <= l-1) <= 2.5 %; assumes independent samples")


def median_ci_ranks(n, confidence=0.95):
    """1-based ranks (l, u) of the order statistics that bracket the median with at least `confidence` coverage,
    exactly (integer binomial arithmetic); None when n is too small for any interval (n < 6 at 95 %)."""
    if n < 1:
        return None
    alpha_half = (1.0 - confidence) / 2.0
    total = 2 ** n
    cdf, term, k = 0, 1, -1  # term = C(n, i)
    for i in range(0, n // 2 + 1):
        if (cdf + term) > alpha_half * total:
            break
        cdf += term
        k = i
        term = term * (n - i) // (i + 1)
    if k < 0:
        return None
    return k + 1, n - k


def median_ci(samples, confidence=0.95):
    """[low, high] of a distribution-free confidence interval for the median of `samples` (see CI_METHOD)."""
    ranks = median_ci_ranks(len(samples), confidence)
    if ranks is None:
        return None
    ordered = sorted(samples)
    return [ordered[ranks[0] - 1], ordered[ranks[1] - 1]]


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def spread(values):
    """{"min", "median", "max", "relative"}: relative = (max - min) / median, the spread of per-round medians."""
    if not values:
        return None
    med = median(values)
    return {"min": min(values), "median": med, "max": max(values),
            "relative": (max(values) - min(values)) / med if med else None}
