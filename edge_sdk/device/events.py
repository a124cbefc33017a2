"""The JSON-lines protocol on stdout: progress events, then exactly one final `result` or `error` line.

Other lines a native library prints on stdout are not JSON; callers skip them. Once the final line is out, nothing
else is printed (the deadline watchdog may race the main thread for it).
"""

import json
import sys
import threading
from datetime import datetime, timezone

_out_lock = threading.Lock()
_finished = [False]  # set (under _out_lock) once a result or error was printed


def _line(event, fields):
    record = {"event": event}
    record.update(fields)
    return json.dumps(record, separators=(",", ":"))


def emit(event, **fields):
    line = _line(event, fields)
    with _out_lock:
        if _finished[0]:
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def emit_final(event, **fields):
    """Print the one result/error line; returns False when another thread printed it first."""
    line = _line(event, fields)
    with _out_lock:
        if _finished[0]:
            return False
        _finished[0] = True
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return True


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
