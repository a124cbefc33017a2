"""Where benchmark results live: `results/<target>/<UTC timestamp>.json`, written atomically, read back validated."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from ..errors import InputError, format_validation_error
from .schema import BenchResult

DEFAULT_RESULTS_DIR = "results"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def result_path(results_dir: str | Path, target: str, when: datetime | None = None) -> Path:
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond // 1000:03d}Z"
    name = _UNSAFE.sub("_", target).lstrip(".") or "target"
    return Path(results_dir) / name / f"{stamp}.json"


def save_result(result: BenchResult, results_dir: str | Path = DEFAULT_RESULTS_DIR) -> Path:
    """Write `result` under results_dir/<target>/ (temp file, then rename); returns the path."""
    path = result_path(results_dir, result.target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(result.model_dump_json(indent=2))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_result(path: str | Path) -> BenchResult:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: benchmark result not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a JSON benchmark result ({exc})") from None
    try:
        return BenchResult.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(str(p), exc)) from None
