"""Exit codes of every device command, and the one exception that carries them.

0 done, 1 unexpected failure, 2 bad arguments/bundle/input, 3 a file's sha256 differs from the manifest (release
operations: any refusal), 4 the runtime is missing or cannot load the model, 124 a deadline passed, 130 interrupted.
"""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTEGRITY, EXIT_RUNTIME = 0, 1, 2, 3, 4
EXIT_DEADLINE, EXIT_INTERRUPTED = 124, 130


class DeviceError(Exception):
    """A failure the device side explains in one line; `code` is the exit code the command ends with."""

    def __init__(self, message, code=EXIT_FAILED):
        Exception.__init__(self, message)
        self.code = code
