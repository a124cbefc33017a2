"""Power and temperature while a benchmark runs: Jetson's `tegrastats` (nothing happens off Jetson)."""

import os
import re
import shutil
import subprocess
import threading

from .watchdog import add_child, die_with_parent, forget_child

_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


def parse_tegrastats_line(line):
    """{"rails_mw": {rail: instant mW}, "temps_c": {sensor: C}} from one tegrastats line."""
    rails = dict((m.group(1), int(m.group(2))) for m in _RAIL.finditer(line))
    temps = {}
    for m in _TEMP.finditer(line):
        value = float(m.group(2))
        if value > -100:  # -256C marks a sensor that is off
            temps[m.group(1)] = value
    return {"rails_mw": rails, "temps_c": temps}


def summarize_tegrastats(samples, interval_ms):
    samples = [s for s in samples if s["rails_mw"] or s["temps_c"]]
    if not samples:
        return None
    rails = {}
    for s in samples:
        for name, mw in s["rails_mw"].items():
            rails.setdefault(name, []).append(mw)
    temps = {}
    for s in samples:
        for name, c in s["temps_c"].items():
            temps[name] = max(c, temps.get(name, c))
    total = next((r for r in TOTAL_RAILS if r in rails), None)
    return {
        "samples": len(samples),
        "interval_ms": interval_ms,
        "power_rail": total,
        "power_mw_mean": (sum(rails[total]) / float(len(rails[total]))) if total else None,
        "power_mw_max": max(rails[total]) if total else None,
        "rails_mw_mean": dict((k, round(sum(v) / float(len(v)), 1)) for k, v in rails.items()),
        "temperatures_c_max": temps,
    }


class Tegrastats(object):
    """Reads Jetson power rails and temperatures in the background; does nothing off Jetson."""

    def __init__(self, interval_ms):
        self.interval_ms = interval_ms
        self.samples = []
        self.proc = None
        exe = shutil.which("tegrastats")
        if not exe:
            return
        try:
            self.proc = subprocess.Popen([exe, "--interval", str(interval_ms)], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                         universal_newlines=True, bufsize=1,
                                         preexec_fn=die_with_parent if os.name == "posix" else None)
        except OSError:
            self.proc = None
            return
        add_child(self.proc)
        self.thread = threading.Thread(target=self._read, name="tegrastats")
        self.thread.daemon = True
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.samples.append(parse_tegrastats_line(line))

    def stop(self):
        """Summary of what was read (None off Jetson or without samples)."""
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=3)
        forget_child(self.proc)
        return summarize_tegrastats(self.samples, self.interval_ms)
