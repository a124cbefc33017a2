"""Deadlines, helper processes and the host's connection: the device side stops itself in time and leaves nothing
running behind it — also when the SSH connection that started it is gone (a killed sshd, a cut link)."""

import os
import select
import signal
import threading

from .errors import EXIT_DEADLINE, EXIT_INTERRUPTED
from .events import emit_final

CONNECTION_POLL_S = 0.5  # how often the connection is looked at: a lost host is noticed within about a second
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


def connection_gone(ppid0, fd=1):
    """Why the process that started us can no longer hear us (None while it can).

    Whoever started us reads our stdout: sshd for a command over SSH, the host's python for a local run. When that
    reader dies, the pipe (or socket) behind fd 1 reports an error/hang-up to poll() — without writing to it, so a
    runner that prints only every few seconds still notices at once. A changed parent pid (we were re-parented)
    says the same about the parent itself.
    """
    if ppid0 > 1 and os.getppid() != ppid0:
        return "its parent process %d exited" % ppid0
    try:
        p = select.poll()
        p.register(fd, 0)  # POLLERR/POLLHUP/POLLNVAL are always reported
        for _fd, ev in p.poll(0):
            if ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                return "nobody reads its output any more"
    except (OSError, ValueError, AttributeError):  # no poll() (not Linux), or fd 1 is not pollable
        pass
    return None


def _lost(why):
    """The host is gone: nobody can read a result, so end helpers and leave now (no final line: no reader)."""
    end_children()
    os._exit(EXIT_INTERRUPTED)


def watch_connection(on_lost=_lost, poll_s=CONNECTION_POLL_S):
    """A daemon thread that calls on_lost(why) once the host that started us is gone (see connection_gone)."""
    ppid0 = os.getppid()

    def run():
        while True:
            why = connection_gone(ppid0)
            if why is not None:
                on_lost(why)
                return
            if stop.wait(poll_s):
                return

    stop = threading.Event()
    t = threading.Thread(target=run, name="connection-watch")
    t.daemon = True
    t.start()
    return stop


class Watchdog(object):
    """Ends the process at the deadline even when the main thread is stuck inside the runtime, and as soon as the
    connection to the host is lost (a runner nobody listens to must not keep the device busy until its deadline).

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
        self._watch = watch_connection()
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
        self._watch.set()
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)
