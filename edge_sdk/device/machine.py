"""What state is the machine in while it is measured? CPU frequency governor and clocks, temperatures, load.

A benchmark is only reproducible when the machine is: a `powersave`/`ondemand` governor, a hot SoC or a busy CPU
moves the median by tens of percent. Everything is read from /sys and os.getloadavg (stdlib only); a file that is
not there (VMs and containers usually have no cpufreq) gives null, and `notes` says so instead of guessing.
"""

import glob
import os
import re

CPUFREQ = "/sys/devices/system/cpu"
THERMAL = "/sys/class/thermal"
LOAD_FRACTION = 0.5  # warn when the 1-min load average before the run exceeds this fraction of the cores


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (IOError, OSError):
        return None


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _cpu_index(path):
    m = re.search(r"/cpu(\d+)/", path)
    return int(m.group(1)) if m else -1


def cpu_frequencies(root=CPUFREQ):
    """{"governors": {cpu: name}, "cur_mhz": {cpu: MHz}, "min_mhz", "max_mhz"}; empty dicts without cpufreq."""
    out = {"governors": {}, "cur_mhz": {}, "min_mhz": {}, "max_mhz": {}}
    for d in sorted(glob.glob(os.path.join(root, "cpu[0-9]*", "cpufreq")), key=lambda p: _cpu_index(p + "/")):
        cpu = "cpu%d" % _cpu_index(d + "/")
        gov = _read(os.path.join(d, "scaling_governor"))
        if gov:
            out["governors"][cpu] = gov
        for key, name in (("cur_mhz", "scaling_cur_freq"), ("min_mhz", "scaling_min_freq"),
                          ("max_mhz", "scaling_max_freq")):
            khz = _int(_read(os.path.join(d, name)))
            if khz is not None:
                out[key][cpu] = round(khz / 1000.0, 1)
    return out


def thermal_zones(root=THERMAL):
    """[{"zone", "type", "temp_c"}] from /sys/class/thermal (millidegrees C there); [] when there are none."""
    zones = []
    for d in sorted(glob.glob(os.path.join(root, "thermal_zone*")), key=lambda p: _int(p.rsplit("zone", 1)[-1]) or 0):
        milli = _int(_read(os.path.join(d, "temp")))
        zones.append({"zone": os.path.basename(d), "type": _read(os.path.join(d, "type")),
                      "temp_c": round(milli / 1000.0, 1) if milli is not None else None})
    return zones


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on this platform
        return None


def machine_warnings(state):
    """Why this measurement may not be reproducible: a loaded machine, a governor other than `performance`."""
    out = []
    load, cores = state.get("load_avg_before"), state.get("cpu_count")
    if load and cores and load[0] > LOAD_FRACTION * cores:
        out.append("the machine was loaded before the run: 1-min load average %.2f on %d cores (> %.1f); other "
                   "work competes with the benchmark, so its numbers are slower and noisier than the device's best"
                   % (load[0], cores, LOAD_FRACTION * cores))
    govs = sorted(set((state.get("governors") or {}).values()))
    if govs and govs != ["performance"]:
        out.append("CPU frequency governor is %s, not 'performance': clocks ramp with load, so latencies vary "
                   "between runs (set it with `cpupower frequency-set -g performance` for stable numbers)"
                   % "/".join(govs))
    return out


def machine_state(cpufreq_root=CPUFREQ, thermal_root=THERMAL):
    """A snapshot taken before the benchmark (see the module docstring); `warnings` and `notes` say what it means."""
    freq = cpu_frequencies(cpufreq_root)
    state = {"cpu_count": os.cpu_count(), "load_avg_before": load_average(),
             "governors": freq["governors"] or None, "cur_mhz": freq["cur_mhz"] or None,
             "min_mhz": freq["min_mhz"] or None, "max_mhz": freq["max_mhz"] or None,
             "thermal_before": thermal_zones(thermal_root) or None, "thermal_after": None, "notes": []}
    if not freq["governors"] and not freq["cur_mhz"]:
        state["notes"].append("no cpufreq in %s (usual in VMs and containers): governor and clocks unknown"
                              % cpufreq_root)
    if not state["thermal_before"]:
        state["notes"].append("no thermal zones in %s: temperatures unknown" % thermal_root)
    if state["load_avg_before"] is None:
        state["notes"].append("os.getloadavg() is not available here: load unknown")
    state["warnings"] = machine_warnings(state)
    return state
