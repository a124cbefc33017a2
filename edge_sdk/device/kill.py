"""`kill PID [GRACE_S]`: stop a remote command and everything it started (stdlib only).

Why by hand: closing an SSH channel does not stop the process behind it (without a pty nothing gets SIGHUP), and
`kill -- -PGID` misses children that left the process group (setsid, job control). No tool on a bare device does
"this process, its session, its group and all their descendants", so this walks /proc: freeze the tree with SIGSTOP
(so nothing forks while we look), send SIGTERM + SIGCONT, wait a grace period, then SIGKILL what is left.

Usage: python3 -m edge_device kill PID [GRACE_S]   → prints the number of processes signalled.
"""

import os
import signal
import time


def _stat(pid):
    """(ppid, pgrp, session, starttime) of a live process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (IOError, OSError):
        return None
    rest = raw[raw.rfind(")") + 2:].split()  # comm may contain spaces and ')': cut after the last ')'
    if rest and rest[0] == "Z":  # zombies are already dead
        return None
    return int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19])


def _session_of(root, stats):
    """The session sshd created for this command, when root belongs to it.

    sshd calls setsid() before starting the login shell, so the session leader is root itself (the shell exec'd
    our command) or root's parent (the shell forked it). A leader further up would be someone else's session
    (a server that does not setsid): then only root's own group and descendants are ours.
    """
    st = stats.get(root)
    if st is not None and st[2] in (root, st[0]) and st[2] > 1:
        return st[2]
    return root


def _all_stats():
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                stats[int(name)] = st
    return stats


def tree(root, lead):
    """{pid: starttime} of root's SSH session `lead` (or group) and all descendants of its members."""
    me = os.getpid()
    stats = _all_stats()
    members = set(p for p, (pp, pg, sid, _) in stats.items()
                  if p in (root, lead) or pg in (root, lead) or sid == lead)
    changed = True
    while changed:
        changed = False
        for p, (pp, pg, sid, _) in stats.items():
            if pp in members and p not in members:
                members.add(p)
                changed = True
    members.discard(me)
    return dict((p, stats[p][3]) for p in members)


def _alive(known):
    """The processes of `known` ({pid: starttime}) still running; the start time guards against reused pids."""
    out = {}
    for p, start in known.items():
        st = _stat(p)
        if st is not None and st[3] == start:
            out[p] = start
    return out


def _signal(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except OSError:
            pass


def kill_tree(root, grace_s=2.0):
    # Decided once, while root is alive: after root dies, processes it left behind still carry the session id.
    lead = _session_of(root, _all_stats())
    seen = tree(root, lead)
    _signal(seen, signal.SIGSTOP)
    seen.update(tree(root, lead))  # anything forked between the scan and the freeze
    _signal(seen, signal.SIGSTOP)
    _signal(seen, signal.SIGTERM)
    _signal(seen, signal.SIGCONT)
    deadline = time.time() + grace_s
    while time.time() < deadline:
        alive = _alive(seen)
        alive.update(tree(root, lead))
        if not alive:
            return len(seen)
        seen.update(alive)
        time.sleep(0.05)
    for _ in range(40):
        alive = _alive(seen)
        alive.update(tree(root, lead))
        if not alive:
            break
        seen.update(alive)
        _signal(alive, signal.SIGKILL)
        time.sleep(0.05)
    return len(seen)
