"""Errors edge-sdk reports to people. The CLI prints them as one line and exits with their code (no traceback).

One exit code per cause, so a script can tell "fix your input" from "the toolchain broke" from "the board is down":

| code | error                | cause                                                                       |
|------|----------------------|-----------------------------------------------------------------------------|
| 0    |                      | success                                                                     |
| 1    |                      | a bug in edge-sdk (an unexpected exception; the traceback is printed)       |
| 2    | InputError           | bad file, field, flag or value given by the user                            |
| 3    | InfeasibleError      | the request is valid but no plan satisfies it                               |
| 4    | QualityGateError     | every candidate plan measured worse than the quality budget                 |
| 5    | RemoteError          | SSH, host key, transfer, or a command on the device failed                  |
| 6    | ParallelRunError     | a rank of a parallel run failed, hung, or its output differs                |
| 7    | ToolError            | a toolchain step failed (export, quantization, conversion, missing env)     |
| 8    | FleetError           | some devices of a fleet failed, others succeeded (summary names them)       |
| 130  |                      | interrupted (Ctrl-C)                                                        |
"""

from __future__ import annotations

EXIT_OK, EXIT_BUG, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_QUALITY, EXIT_REMOTE, EXIT_PARALLEL, EXIT_TOOL, EXIT_FLEET = range(9)
EXIT_INTERRUPTED = 130


class EdgeSdkError(Exception):
    """Base of every error edge-sdk explains itself: the message names the file/field/value and what was expected."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(EdgeSdkError):
    """Bad file, field, flag or value (exit 2)."""


class InfeasibleError(EdgeSdkError):
    """The request is valid but no plan satisfies it (exit 3)."""

    exit_code = EXIT_INFEASIBLE


class QualityGateError(EdgeSdkError):
    """A build measured quality worse than the budget allows, for every candidate plan (exit 4)."""

    exit_code = EXIT_QUALITY


class RemoteError(EdgeSdkError):
    """SSH, host-key, transfer or remote-command failure (exit 5)."""

    exit_code = EXIT_REMOTE


class ParallelRunError(EdgeSdkError):
    """A rank failed or hung, or the parallel output differs from one process; the message names it (exit 6)."""

    exit_code = EXIT_PARALLEL


class ToolError(EdgeSdkError):
    """A toolchain step failed on valid input: an exporter, quantizer or converter crashed or produced a model
    that differs from PyTorch, or its environment is missing (exit 7)."""

    exit_code = EXIT_TOOL


class FleetError(EdgeSdkError):
    """A command over a fleet failed on some devices (exit 8) — or on all of them alike (then with their code)."""

    exit_code = EXIT_FLEET


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
