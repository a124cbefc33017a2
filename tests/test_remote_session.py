"""Session.run/put/sha256 against the real loopback sshd: streaming, quoting, deadlines and leftover processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import send_after_channel_closes
from edge_sdk.errors import RemoteError
from edge_sdk.remote import RemoteTimeout, Session, load_target_file

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="module")
def session(sshd, tmp_path_factory):
    t = load_target_file(sshd.write_target(tmp_path_factory.mktemp("targets"), "sess"))
    with Session(t) as s:
        yield s


def leftovers(marker: str) -> str:
    """Processes anywhere on the machine whose command line contains marker (pgrep -f)."""
    return subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout.strip()


def test_run_streams_lines_in_order_with_exit_status(session):
    seen = []
    rc, out, err = session.run(["sh", "-c", "echo one; echo two >&2; printf 'no-newline'; exit 7"],
                               on_line=lambda stream, line: seen.append((stream, line)))
    assert rc == 7 and out == "one\nno-newline" and err == "two\n"
    assert ("stdout", "one") in seen and ("stderr", "two") in seen and seen[-1] == ("stdout", "no-newline")
    assert session.run(["cat"], stdin=b"from stdin\n").stdout == "from stdin\n"
    with pytest.raises(RemoteError, match="exit status 3: boom"):
        session.run(["sh", "-c", "echo boom >&2; exit 3"], check=True)
    assert session.run(["definitely-not-a-command-xyz"]).rc == 127


def test_output_sent_after_the_exit_status_is_not_lost(session):
    """sshd may send a command's exit status before the last output it has still to read from the command's pipe;
    run() reads until EOF. (Before it did, about one run in 100 of this lost its last kilobytes on loopback, so the
    test fails on such a reader 9 times in 10.)"""
    for _ in range(200):
        res = session.run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; printf end; exit 3"])
        assert (res.rc, len(res.stdout), res.stdout[-4:]) == (3, 300_003, "xend")


def test_a_background_process_holding_stdout_does_not_hold_run(session):
    """EOF never comes while a child the command left behind keeps its stdout open: run() stops waiting soon after
    the exit status (the ssh client would wait for it)."""
    mark = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    t0 = time.monotonic()
    try:
        assert session.run(["sh", "-c", f"sleep 7{mark} & echo started"], timeout=30) == (0, "started\n", "")
        assert time.monotonic() - t0 < 15
    finally:
        subprocess.run(["pkill", "-f", f"sleep 7{mark}"])


def test_metacharacters_in_args_cwd_and_env_stay_inert(session, sshd):
    tag = uuid.uuid4().hex[:8]
    pwned = f"/tmp/pwned-{tag}"
    words = ["a b", f"x;touch {pwned}", f"$(touch {pwned})", f"`touch {pwned}`", "'q'", '"dq"', "$HOME", "*"]
    top = f"/tmp/edge sdk {tag};touch "     # the "/" in pwned makes odd_dir three directories deep under this one
    odd_dir = f"{top}{pwned}$(id)"
    os.makedirs(odd_dir)
    os.chmod(odd_dir, 0o777)
    try:
        rc, out, _ = session.run(["python3", "-c", "import os, sys; print(os.getcwd()); print(os.environ['EV']); "
                                  "[print(a) for a in sys.argv[1:]]", *words],
                                 cwd=odd_dir, env={"EV": f"$(touch {pwned})"})
        assert rc == 0
        assert out.splitlines() == [odd_dir, f"$(touch {pwned})", *words]
        assert not os.path.exists(pwned)
    finally:
        shutil.rmtree(top)


def test_deadline_kills_the_whole_process_tree(session):
    """A hanging command with a background child, a setsid'd grandchild, and a SIGTERM-ignoring shell that starts
    a new process after the command itself has died: all gone."""
    mark = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"  # unique sleep durations double as markers for pgrep
    script = (f"sleep 1{mark} & setsid sleep 2{mark} & "
              f"sh -c 'trap \"\" TERM; sleep 1.4; sleep 3{mark}' & sleep 4{mark}; wait")
    t0 = time.monotonic()
    with pytest.raises(RemoteTimeout, match=r"did not finish within 1 s.*killed its process tree") as ei:
        session.run(["sh", "-c", script], timeout=1, kill_grace_s=1)
    elapsed = time.monotonic() - t0
    assert ei.value.exit_code == 5 and ei.value.killed >= 4
    assert elapsed < 10, elapsed  # 1 s deadline + 1 s grace + the kill itself (generous: shared machine)
    time.sleep(0.3)
    assert leftovers(mark) == ""
    assert session.run(["echo", "still usable"]).stdout == "still usable\n"  # the connection survived


def test_keyboard_interrupt_in_the_callback_kills_remote_command(session):
    mark = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"

    def on_line(stream, line):
        if line == "started":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.run(["sh", "-c", f"sleep 5{mark} & echo started; sleep 6{mark}"], on_line=on_line, timeout=30)
    time.sleep(0.3)
    assert leftovers(mark) == ""


def test_put_and_sha256_with_odd_names(session, sshd, tmp_path):
    data = os.urandom(3_000_000)
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    remote_dir = f"/tmp/edge-sdk-put-{uuid.uuid4().hex[:6]} $(x);'"
    os.makedirs(remote_dir)
    os.chmod(remote_dir, 0o777)
    try:
        remote = f"{remote_dir}/b l\"o'b.bin"
        assert session.put(local, remote) == len(data)
        with open(remote, "rb") as f:
            assert f.read() == data
        assert session.get(remote, tmp_path / "back.bin") == len(data)
        assert (tmp_path / "back.bin").read_bytes() == data
        digests = session.sha256([remote, f"{remote_dir}/missing"])
        assert digests == {remote: hashlib.sha256(data).hexdigest(), f"{remote_dir}/missing": None}
        with pytest.raises(RemoteError, match="upload of .* failed"):
            session.put(local, "/nonexistent-dir/x.bin")
    finally:
        subprocess.run(["rm", "-rf", remote_dir])


def test_sftp_uses_large_write_requests(session):
    session.sftp
    assert session._write_size > 32768 and session._read_size > 32768  # OpenSSH's limits@openssh.com honoured
    assert session.transport.local_cipher.startswith("aes128-gcm")


def test_command_that_exits_before_reading_stdin_reports_its_exit_status(session, monkeypatch):
    """The server can close the channel before the stdin payload goes out (the wrapper's `cd` fails at once): the run
    must report the command's exit status (125, which makes run_device upload its package), not 'Socket is closed'.
    The payload is held back until the channel has closed, so the race goes the losing way every time."""
    send_after_channel_closes(monkeypatch)
    res = session.run(["cat"], cwd=f"/nonexistent-{uuid.uuid4().hex[:8]}", stdin=b'{"op": 1}\n')
    assert res.rc == 125 and res.stdout == ""
    monkeypatch.undo()
    assert session.run(["cat"], stdin=b"still usable\n").stdout == "still usable\n"  # the connection lives on
