"""Errors a user can cause. The CLI prints them as one line and exits with their code (no traceback)."""

from __future__ import annotations


class EdgeSdkError(Exception):
    """A problem with the user's input: names the file/field/value and what was expected."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(EdgeSdkError):
    """Bad file, field, flag or value (exit 2)."""


class InfeasibleError(EdgeSdkError):
    """The request is valid but no plan satisfies it (exit 3)."""

    exit_code = 3


class QualityGateError(EdgeSdkError):
    """A build measured quality worse than the budget allows, for every candidate plan (exit 4)."""

    exit_code = 4


class RemoteError(EdgeSdkError):
    """SSH, host-key, transfer or remote-command failure (exit 5)."""

    exit_code = 5


def format_validation_error(source: str, exc) -> str:
    """One line from a pydantic ValidationError: file, dotted field, what was wrong/expected."""
    errs = exc.errors()
    first = errs[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    msg = first.get("msg", "invalid").removeprefix("Value error, ")
    got = first.get("input")
    got_s = ""
    if got is not None and not isinstance(got, (dict, list)):
        got_s = f" (got {got!r})"
    more = f" [+{len(errs) - 1} more error(s)]" if len(errs) > 1 else ""
    if not loc:  # a check across fields: the message itself names them
        return f"{source}: {msg}{more}"
    return f"{source}: field '{loc}': {msg}{got_s}{more}"
