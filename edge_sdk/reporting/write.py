"""Writing a report: report.json, report.md and report.html into one directory, each atomically.

Each file is written under a temporary name in the same directory and renamed into place, so a reader (a browser
refreshing, a CI job collecting artifacts) sees the old file or the new one, never half of one. All three are
rendered before the first is written, so a rendering bug leaves the previous report intact.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import atomic_write_text, load_artifact
from ..errors import InputError
from .html import render_html
from .markdown import render_markdown
from ..schemas.report import CompatReport

FILES = ("report.json", "report.md", "report.html")


def write_report(report: CompatReport, out_dir: str | Path) -> dict[str, Path]:
    """Write the three renderings; returns {file name: path}."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out}: exists and is not a directory; expected a directory for report.json/.md/.html")
    texts = {"report.json": report.model_dump_json(indent=2) + "\n", "report.md": render_markdown(report),
             "report.html": render_html(report)}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"-o {out}: cannot create the directory ({exc.strerror})") from None
    paths = {}
    for name in FILES:
        atomic_write_text(out / name, texts[name])
        paths[name] = out / name
    return paths


def load_report(path: str | Path) -> CompatReport:
    """Read a report.json back (validated)."""
    return load_artifact(CompatReport, path, "report")
