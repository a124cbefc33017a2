"""The `edge-sdk` command: a thin shell. One short function per subcommand; the work lives in the stages.

Each submodule registers its commands on `app`. User mistakes (EdgeSdkError) print one line and exit with their
code; nothing prints a traceback for them.
"""

from __future__ import annotations

import sys

import typer

from ..errors import EdgeSdkError
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


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="edge-sdk", standalone_mode=True)
    except EdgeSdkError as exc:  # raised outside typer's own handling (rare)
        console_err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(exc.exit_code)


__all__ = ["app", "main", "typer"]
