"""Compatibility reports: for one model over many device profiles, whether and how it runs, which ops would leave
the accelerator, predicted vs measured latency (and, for decoders, TTFT and tokens/s), and the versions of everything
involved.

`build_report()` returns a CompatReport (the JSON source of truth); `write_report()` writes report.json,
report.md and a self-contained report.html (inline CSS and SVG plots, no network) into a directory.
"""

from .compose import build_report
from .generation import decoder_pm_lines
from ..schemas.report import CompatReport, DeviceReport, RuntimeCoverage
from .write import load_report, write_report

__all__ = ["CompatReport", "DeviceReport", "RuntimeCoverage", "build_report", "decoder_pm_lines", "load_report",
           "write_report"]
