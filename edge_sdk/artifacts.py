"""How artifacts are written and read back: atomically (temp file, then rename) and validated on the way in.

Every stage's output (a Plan, a BenchResult, a report) is a pydantic model saved as JSON. A reader — a later stage,
a browser refreshing, a CI job — must see the old file or the new one, never half of one; and a file a user edited
by hand must come back with an error naming the file and field, not a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InputError, format_validation_error

M = TypeVar("M", bound=BaseModel)


def check_output_path(path: str | Path, *, kind: str = "file", flag: str = "-o") -> Path:
    """Refuse an output path that cannot be written, before any work: a directory where a file goes (`kind="file"`),
    a file where a directory goes (`kind="dir"`), or a path below an existing file. One InputError naming it."""
    p = Path(path)
    if kind == "file" and p.is_dir():
        raise InputError(f"{flag} {p}: is a directory; expected the path of a file to write")
    if kind == "dir" and p.exists() and not p.is_dir():
        raise InputError(f"{flag} {p}: exists and is not a directory; expected a directory (or a new path)")
    for parent in p.parents:  # the nearest one that exists must be a directory, or nothing can be created below it
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                what = "a file, not a directory" if parent.exists() else "a broken link"
                raise InputError(f"{flag} {p}: '{parent}' is {what}; choose another path")
            break
    return p


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to a temp file beside `path` (readable 0644), then rename it into place."""
    p = check_output_path(path, flag="output")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_json(path: str | Path, what: str) -> object:
    """Parse a JSON file; a missing or malformed file is one InputError naming it (`what`: "plan", ...)."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory; expected a JSON {what} file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a JSON {what} ({exc})") from None


def validate(model_cls: type[M], data: object, source: str | Path) -> M:
    """Validate parsed JSON against an artifact schema; errors name the file and the field."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(str(source), exc)) from None


def load_artifact(model_cls: type[M], path: str | Path, what: str) -> M:
    return validate(model_cls, read_json(path, what), path)
