"""Where benchmark results live: `results/<target>/<UTC timestamp>.json`, written atomically, read back validated."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import atomic_write_text, load_artifact
from ..schemas.bench import BenchResult

DEFAULT_RESULTS_DIR = "results"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def result_path(results_dir: str | Path, target: str, when: datetime | None = None) -> Path:
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond // 1000:03d}Z"
    name = _UNSAFE.sub("_", target).lstrip(".") or "target"
    return Path(results_dir) / name / f"{stamp}.json"


def save_result(result: BenchResult, results_dir: str | Path = DEFAULT_RESULTS_DIR) -> Path:
    """Write `result` under results_dir/<target>/ (temp file, then rename); returns the path."""
    return atomic_write_text(result_path(results_dir, result.target), result.model_dump_json(indent=2))


def load_result(path: str | Path) -> BenchResult:
    return load_artifact(BenchResult, path, "benchmark result")
