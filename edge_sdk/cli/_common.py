"""Shared CLI plumbing: the typer app, consoles, JSON printing and the user-error wrapper."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer
from pydantic import BaseModel
from rich.console import Console

from ..errors import EdgeSdkError

app = typer.Typer(
    name="edge-sdk",
    help="Fit trained transformers to real devices: plan, compress, package, deploy, benchmark, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
def _width() -> int | None:
    """Rich falls back to 80 columns when not on a terminal (pipes, CI logs): our tables are wider than that."""
    import os
    import sys

    if sys.stdout.isatty():
        return None
    return max(int(os.environ.get("COLUMNS", "0") or 0), 200)


console = Console(highlight=False, soft_wrap=False, width=_width())
console_err = Console(stderr=True, highlight=False, width=_width())


def user_errors(fn: Callable) -> Callable:
    """Turn EdgeSdkError into one red line on stderr and the error's exit code (2 for bad input)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeSdkError as exc:
            console_err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def print_json(obj: Any) -> None:
    """Print a pydantic model, a list of them, or plain data as JSON on stdout."""
    def conv(o: Any) -> Any:
        if isinstance(o, BaseModel):
            return o.model_dump(mode="json")
        if isinstance(o, (list, tuple)):
            return [conv(x) for x in o]
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        return o

    sys.stdout.write(json.dumps(conv(obj), indent=2) + "\n")


def note(msg: str) -> None:
    """A side remark for people (stderr, so --json output stays clean)."""
    console_err.print(f"[dim]{msg}[/dim]", highlight=False, soft_wrap=True)


ProfilesDirOpt = typer.Option(None, "--profiles-dir", help="Extra directory of device profile YAMLs "
                              "(overrides shipped profiles of the same name; also $EDGE_SDK_PROFILES)")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON on stdout")


def registry(profiles_dir: list[str] | None):
    from ..profiles import load_registry

    return load_registry(profiles_dir or [])
