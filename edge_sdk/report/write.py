"""Writing a report: report.json, report.md and report.html into one directory, each atomically.

Each file is written under a temporary name in the same directory and renamed into place, so a reader (a browser
refreshing, a CI job collecting artifacts) sees the old file or the new one, never half of one. All three are
rendered before the first is written, so a rendering bug leaves the previous report intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputError
from .html import render_html
from .markdown import render_markdown
from .schema import CompatReport

FILES = ("report.json", "report.md", "report.html")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        _atomic_write(out / name, texts[name])
        paths[name] = out / name
    return paths


def load_report(path: str | Path) -> CompatReport:
    """Read a report.json back (validated)."""
    import json

    from pydantic import ValidationError

    from ..errors import format_validation_error

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: report not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a JSON report ({exc})") from None
    try:
        return CompatReport.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(str(p), exc)) from None
