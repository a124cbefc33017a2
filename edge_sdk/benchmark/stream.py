"""Following a running runner: its JSON lines drive a progress bar, and its ending becomes a result or an error.

The same follower serves the local subprocess and the remote SSH channel, so both report failures alike.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..device.errors import EXIT_BAD_INPUT, EXIT_DEADLINE, EXIT_INTEGRITY  # edge_device bench's exit codes
from ..errors import InputError, RemoteError

_console_err = Console(stderr=True, highlight=False)


class RunnerStream:
    """Feed it every stdout line (`on_line`); ask it for the outcome once the process has ended."""

    def __init__(self, where: str, *, show_progress: bool | None = None):
        self.where = where
        self.start: dict[str, Any] | None = None
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.other_lines: list[str] = []  # what native libraries printed on stdout
        show = _console_err.is_terminal if show_progress is None else show_progress
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:g}/"
                             "{task.total:g} {task.fields[unit]}"), TimeElapsedColumn(), console=_console_err,
                             transient=True, disable=not show)
        self._task = self._bar.add_task(f"bench on {where}: starting", total=None, unit="")

    def __enter__(self) -> "RunnerStream":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def on_line(self, line: str) -> None:
        text = line.strip()
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            if text and len(self.other_lines) < 200:
                self.other_lines.append(text[:500])
            return
        kind = event["event"]
        if kind == "progress":
            self._bar.update(self._task, completed=event.get("done", 0), total=event.get("total"),
                             unit=event.get("unit", ""), description=f"bench on {self.where}")
        elif kind == "start":
            self.start = event
            self._bar.update(self._task, description=f"bench on {self.where}: warming up")
        elif kind == "result":
            self.result = event
        elif kind == "error":
            self.error = event

    def outcome(self, rc: int | None, stderr: str, *, killed_after_s: float | None = None,
                local: bool = False) -> dict[str, Any]:
        """The runner's result record, or the error a user should read (InputError for a bad local bundle,
        RemoteError otherwise; both one line)."""
        if killed_after_s is not None:
            raise RemoteError(f"the runner on {self.where} did not finish within {killed_after_s:g}s and was "
                              f"killed; raise --timeout or lower --iterations/--duration")
        if self.result is not None and rc == 0:
            return self.result
        if self.error is not None:
            msg, code = self.error.get("message", "unknown error"), self.error.get("code", rc)
            if "unrecognized arguments" in msg:  # a bundle built before this edge-sdk learnt the option
                raise InputError(f"the bundle's device package on {self.where} is older than this edge-sdk and does "
                                 f"not know an option it was given ({msg.split('unrecognized arguments:')[-1].strip()})"
                                 f"; rebuild the bundle with `edge-sdk build` (and deploy it again)")
            if code == EXIT_DEADLINE:
                raise RemoteError(f"the runner on {self.where} hit its deadline and stopped: {msg}; raise "
                                  f"--timeout or lower --iterations/--duration")
            if local and code in (EXIT_BAD_INPUT, EXIT_INTEGRITY):
                raise InputError(f"bundle refused by the runner: {msg}")
            raise RemoteError(f"the runner on {self.where} failed: {msg}")
        tail = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()][-1:]
        why = f"exited with status {rc}" if rc else "ended without a result"
        raise RemoteError(f"the runner on {self.where} {why}" + (f": {tail[0][:300]}" if tail else ""))
