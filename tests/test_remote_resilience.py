"""What happens to a device when its connection goes, against a real OpenSSH server on loopback:

- a lost connection during `bench` ends the runner on the device within seconds, and the host says the connection
  was lost (not that the runner "exited with status -1");
- a cut connection mid-upload or mid-switch says so, how far the deploy got, and that re-running resumes;
- two deploys of one bundle to one device at once: the second waits for the first (device-side lock) and then has
  nothing to send; a third that will not wait is told "already being deployed"; a dead holder leaves no stale lock.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from conftest import make_bundle, root_loopback_sshd, send_after_channel_closes, write_loopback_target
from edge_sdk.errors import RemoteError
from edge_sdk.remote import ConnectionLost, DeployBusy, DeployLock, Session, deploy, load_target_file, verify_release
from test_bench_local import alive
from test_remote_deploy import CuttingRelay

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("resilience")
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def server(work):
    with root_loopback_sshd(work) as srv:
        yield srv


@pytest.fixture
def target(server, tmp_path):
    os.chmod(tmp_path, 0o755)
    return load_target_file(write_loopback_target(server, tmp_path, name="dev"))


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _runner_pid(workdir: str, timeout_s: float = 60) -> int | None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for d in os.listdir("/proc"):
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
                if b"edge_device" in cmd and b"bench" in cmd and os.readlink(f"/proc/{d}/cwd").startswith(workdir):
                    return int(d)
            except (OSError, ValueError):
                continue
        time.sleep(0.1)
    return None


def test_lost_connection_during_bench_ends_the_runner_and_says_so(server, target, work):
    from edge_sdk.benchmark import bench_remote
    from test_bench_inputs import make_bundle as make_model_bundle

    deploy(make_model_bundle(work / "model", cache_dir=work), target)
    outcome: dict = {}

    def bench() -> None:
        try:  # 100 s of timed runs: the runner prints progress only every 10 s
            bench_remote(target, duration_s=100, warmup=1, batches=[1], threads=1, show_progress=False)
        except RemoteError as exc:
            outcome["error"] = exc

    th = threading.Thread(target=bench, daemon=True)
    th.start()
    pid = _runner_pid(target.workdir)
    assert pid is not None, "the runner never started"
    time.sleep(1.5)  # well inside the timed loop, seconds before its next progress line
    chain, p = [], _ppid(pid)
    while p > 1 and p != server.proc.pid:  # the sshd processes serving this connection (not the listener)
        chain.append(p)
        p = _ppid(p)
    assert chain, "no sshd between the runner and the listener"
    for p in chain:
        os.kill(p, signal.SIGKILL)
    t_kill = time.monotonic()
    while alive(pid) and time.monotonic() - t_kill < 10:
        time.sleep(0.05)
    gone_after = time.monotonic() - t_kill
    th.join(30)
    assert not alive(pid), "the runner is still running on the device 10 s after its connection died"
    assert gone_after < 3.0, f"the runner noticed its lost connection only after {gone_after:.1f} s"
    err = str(outcome.get("error"))
    assert isinstance(outcome.get("error"), ConnectionLost), err
    assert "connection to" in err and "was lost" in err and "status -1" not in err


def test_cut_mid_upload_says_connection_lost_how_far_and_resume(server, target, tmp_path):
    first = deploy(make_bundle(tmp_path / "small", big_mb=0.2, seed=1), target)
    relay = CuttingRelay(server.port, cut_after=2_000_000)
    kh = tmp_path / "known_hosts_relay"
    kh.write_text(server.known_hosts_entry(port=relay.listen_port) + "\n")
    via = target.model_copy(update={"port": relay.listen_port, "known_hosts": str(kh)})
    try:
        with pytest.raises(ConnectionLost) as info:
            deploy(make_bundle(tmp_path / "big", big_mb=6, seed=2), via)
    finally:
        relay.stop()
    msg = str(info.value)
    assert "was lost" in msg and "stopped after 0 of " in msg and " MB sent" in msg, msg
    assert f"still points at {first.release_id}" in msg and "re-run the deploy to resume" in msg
    assert ": ;" not in msg and not msg.rstrip().endswith(":")
    again = deploy(make_bundle(tmp_path / "big", big_mb=6, seed=2), target)  # resumes: reuses complete files
    assert again.switched and verify_release(target).ok


def test_cut_right_before_the_switch_says_current_is_one_of_two(server, target, tmp_path):
    first = deploy(make_bundle(tmp_path / "one", big_mb=0.2, seed=3), target)
    relay = CuttingRelay(server.port, cut_after=1 << 40)
    kh = tmp_path / "known_hosts_relay"
    kh.write_text(server.known_hosts_entry(port=relay.listen_port) + "\n")
    via = target.model_copy(update={"port": relay.listen_port, "known_hosts": str(kh)})
    b2 = make_bundle(tmp_path / "two", big_mb=0.2, seed=4)
    try:
        with pytest.raises(ConnectionLost) as info:
            deploy(b2, via, before_switch=relay.close_all)
    finally:
        relay.stop()
    msg = str(info.value)
    assert "was lost" in msg and f"either still {first.release_id} or already" in msg, msg
    assert "re-run the deploy to finish" in msg and "nothing is sent again" in msg
    done = deploy(b2, target)
    assert done.files_sent == 0 and done.previous_release == first.release_id


def test_concurrent_deploys_of_one_bundle_serialize_on_the_device(target, tmp_path):
    bundle = make_bundle(tmp_path / "same", big_mb=6, seed=5)
    started = [threading.Event(), threading.Event()]
    results: list = [None, None]

    def run(i: int) -> None:
        def on_progress(rel, done, total):  # hold the upload until the other deploy uploads too (or 3 s pass)
            if not started[i].is_set():
                started[i].set()
                started[1 - i].wait(3)

        try:
            results[i] = deploy(bundle, target, on_progress=on_progress)
        except RemoteError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(not isinstance(r, Exception) for r in results), results
    assert results[0].release_id == results[1].release_id
    assert sorted(r.files_sent for r in results) == [0, results[0].files_total]  # the second had nothing to send
    assert verify_release(target).ok


def test_a_held_lock_is_reported_and_dies_with_its_holder(target, tmp_path):
    bundle = make_bundle(tmp_path / "b", big_mb=0.2, seed=6)
    holder = Session(target).connect()
    lock = DeployLock(holder, holder="the test's own deploy").__enter__()
    t0 = time.monotonic()
    with pytest.raises(DeployBusy, match="already being deployed by the test's own deploy") as info:
        deploy(bundle, target, lock_wait_s=1)
    assert 1.0 <= time.monotonic() - t0 < 15 and info.value.exit_code == 5
    holder.transport.sock.close()  # the holder's host vanishes without a goodbye
    holder.close()
    rel = deploy(bundle, target, lock_wait_s=30)  # the device process died with its connection, and the lock too
    assert rel.switched and lock.workdir


def test_lock_on_a_device_without_the_package_survives_the_channel_closing_first(target, monkeypatch):
    """On a device without the package the lock's wrapper exits 125 at once; when the server closes the channel
    before the lock request goes out (forced here: the first send waits for the close), the lock must still upload
    the package and start, not fail with 'Socket is closed'."""
    calls = send_after_channel_closes(monkeypatch, first_only=True)
    with Session(target) as s, DeployLock(s, holder="late sender") as lock:
        assert lock.workdir and len(calls) == 2  # the refused first start, then the lock after the upload
