"""Deadlines and helper processes: the device side stops itself in time and leaves nothing running behind it."""

import os
import signal
import threading

from .errors import EXIT_DEADLINE
from .events import emit_final

_children = []  # helper processes (tegrastats) to end on every way out


def add_child(proc):
    _children.append(proc)


def forget_child(proc):
    if proc in _children:
        _children.remove(proc)


def end_children():
    for proc in list(_children):
        try:
            proc.terminate()
        except OSError:
            pass


def die_with_parent():
    """In a child (preexec_fn): ask Linux to SIGTERM it when we die, however we die."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Watchdog(object):
    """Ends the process at the deadline even when the main thread is stuck inside the runtime.

    A thread prints the error line and exits 124; should the GIL never come free, SIGALRM (default action:
    terminate) fires a few seconds later as a backstop.
    """

    def __init__(self, seconds, what="runner"):
        self.seconds = seconds
        self.what = what
        self._stop = threading.Event()
        t = threading.Thread(target=self._wait, name="deadline")
        t.daemon = True
        t.start()
        if hasattr(signal, "setitimer"):
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.setitimer(signal.ITIMER_REAL, seconds + 5.0)

    def _wait(self):
        if self._stop.wait(self.seconds):
            return
        if emit_final("error", message="deadline of %gs passed; %s stopped itself" % (self.seconds, self.what),
                      code=EXIT_DEADLINE):
            end_children()
            os._exit(EXIT_DEADLINE)

    def cancel(self):
        self._stop.set()
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)
