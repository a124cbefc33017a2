"""The `edge-sdk` command: a thin shell. One short function per subcommand; the work lives in the stages.

Each submodule registers its commands on `app`. User mistakes (EdgeSdkError) print one line and exit with their
code; nothing prints a traceback for them.
"""

from __future__ import annotations

import sys

import typer

from ..errors import EXIT_INPUT, EXIT_INTERRUPTED, EdgeSdkError
from ._common import app, console_err

# Subcommand modules register themselves on import.
from . import devices as _devices  # noqa: E402,F401
from . import inspect as _inspect  # noqa: E402,F401
from . import plan as _plan  # noqa: E402,F401
from . import build as _build  # noqa: E402,F401
from . import bench as _bench  # noqa: E402,F401
from . import remote as _remote  # noqa: E402,F401
from . import parallel as _parallel  # noqa: E402,F401
from . import calibrate as _calibrate  # noqa: E402,F401
from . import graph as _graph  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import predict as _predict  # noqa: E402,F401


def _given_value(exc, args: list[str]) -> str | None:
    """The raw text the user gave for the option a BadParameter is about (click does not keep it)."""
    param = getattr(exc, "param", None)
    for opt in getattr(param, "opts", None) or []:
        for i, a in enumerate(args):
            if a == opt and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(opt + "=") and opt.startswith("--"):
                return a[len(opt) + 1:]
    return None


def _click_exceptions():
    """typer ≥ 0.2x ships its own copy of click; older typer uses click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions
    return exceptions


def usage_error_line(exc, args: list[str]) -> str:
    """A click usage error (bad number, unknown option, missing argument) as one line, like every other input
    error, instead of typer's multi-line box: the command, what was wrong, the value given, where to look."""
    ctx = getattr(exc, "ctx", None)
    cmd = ctx.command_path if ctx is not None else "edge-sdk"
    msg = " ".join(exc.format_message().split()).rstrip(".")
    if isinstance(exc, typer.BadParameter):
        got = _given_value(exc, args)
        if got is not None and repr(got) not in msg:
            msg += f" (got {got!r})"
    return f"{cmd}: {msg}; see '{cmd} --help'"


def main(argv: list[str] | None = None) -> None:
    cx = _click_exceptions()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="edge-sdk", standalone_mode=False)
    except cx.NoArgsIsHelpError:  # the help was printed while the error was made
        sys.exit(EXIT_INPUT)
    except cx.UsageError as exc:
        console_err.print(f"[red]error:[/red] {usage_error_line(exc, args)}", highlight=False, markup=True,
                          soft_wrap=True)
        sys.exit(EXIT_INPUT)
    except cx.ClickException as exc:
        console_err.print(f"[red]error:[/red] {' '.join(exc.format_message().split())}", highlight=False,
                          soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, getattr(cx, "Abort", typer.Abort)):
        console_err.print("[red]aborted[/red]", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    except EdgeSdkError as exc:  # raised outside a command's own handling (rare)
        console_err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    # without standalone mode, typer returns the code of a typer.Exit (a command itself returns None)
    sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


__all__ = ["app", "main", "typer", "usage_error_line"]
