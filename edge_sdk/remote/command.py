"""The one string a device's login shell receives for a command (quoted argv words behind a small sh wrapper), and
how its output is read back.

The wrapper prints the command's PID on stderr (so a deadline can kill its process tree), optionally changes
directory (exit 125 when it cannot: callers tell "no such release/package" from a failing command by it), sets
environment variables, and execs the command so the PID stays the command's own.
"""

from __future__ import annotations

import re
import shlex
from typing import Callable

from ..errors import RemoteError

PID_MARK = "__edge_sdk_pid__="
PID_RE = re.compile(r"^__edge_sdk_pid__=(\d+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXIT_NO_DIR = 125  # the wrapper's exit status when it cannot cd into the command's directory


def remote_command(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> str:
    """The one string sent to the device's login shell, built only from quoted argv words.

    The wrapper prints its PID on stderr (so a deadline can kill the command's process tree), optionally changes
    directory, and then execs the command, so the PID stays the command's own.
    """
    if not argv or not all(isinstance(a, str) for a in argv):
        raise RemoteError(f"remote command must be a non-empty list of strings, got {argv!r}")
    script = f'printf "%s\\n" "{PID_MARK}$$" >&2; '
    words: list[str] = []
    if cwd is not None:
        script += f'cd -- "$1" || exit {EXIT_NO_DIR}; shift; '
        words.append(cwd)
    if env:
        for k in env:
            if not _ENV_NAME.match(k):
                raise RemoteError(f"invalid environment variable name {k!r}")
        words += ["env"] + [f"{k}={v}" for k, v in env.items()]
    script += 'exec "$@"'
    return shlex.join(["sh", "-c", script, "edge-sdk", *words, *argv])


LineCallback = Callable[[str, str], None]
"""on_line(stream, line): stream is "stdout" or "stderr"; line has no trailing newline."""


class OutputLines:
    """Splits a byte stream into lines for the callback and keeps the full text; strips our PID marker."""

    def __init__(self, stream: str, on_line: LineCallback | None):
        self.stream, self.on_line = stream, on_line
        self.buf = b""
        self.parts: list[str] = []
        self.pid: int | None = None

    def feed(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            self._line(raw.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        if self.stream == "stderr" and self.pid is None:
            m = PID_RE.match(line)
            if m:
                self.pid = int(m.group(1))
                return
        self.parts.append(line + "\n")
        if self.on_line is not None:
            self.on_line(self.stream, line)

    def finish(self) -> str:
        if self.buf:
            tail, self.buf = self.buf.decode("utf-8", "replace"), b""
            self.parts.append(tail)
            if self.on_line is not None:
                self.on_line(self.stream, tail)
        return "".join(self.parts)
