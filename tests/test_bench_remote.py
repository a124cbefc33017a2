"""`bench_remote` and `edge-sdk bench --target` against a real OpenSSH server on loopback: deploy a real bundle,
run its runner over SSH, and kill a hanging one at the deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from edge_sdk.benchmark import BenchResult, bench_remote
from edge_sdk.errors import RemoteError
from conftest import root_loopback_sshd, write_loopback_target
from test_bench_inputs import make_bundle
from test_bench_local import HANGING_RUNNER, alive, with_runner

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-remote")


@pytest.fixture(scope="module")
def sshd(work):
    with root_loopback_sshd(work) as server:
        yield server


@pytest.fixture(scope="module")
def target_file(sshd, work):
    return write_loopback_target(sshd, work)


@pytest.fixture(scope="module")
def target(target_file):
    from edge_sdk.remote import load_target_file

    return load_target_file(target_file)


@pytest.fixture(scope="module")
def deployed(target, work):
    from edge_sdk.remote import deploy

    bundle = make_bundle(work / "onnx", cache_dir=work)
    # before anything is deployed there is no `current` to run
    with pytest.raises(RemoteError, match="no current release at .*deploy a bundle first"):
        bench_remote(target, iterations=2, show_progress=False)
    return bundle, deploy(bundle, target)


def test_bench_remote_runs_the_current_release(target, deployed):
    _, release = deployed
    r = bench_remote(target, iterations=10, warmup=1, batches=[1, 2], threads=1, show_progress=False)
    assert r.target == "loop" and r.target_profile == "host" and r.host.startswith("root@127.0.0.1:")
    assert r.release == r.bundle_id == release.release_id  # `current` resolved to its release directory
    assert [(b.batch, b.iterations) for b in r.batches] == [(1, 10), (2, 10)]
    assert r.predicted_over_measured == pytest.approx(2.0 / r.batches[0].latency_ms.p50)


def test_bench_remote_by_bundle_and_unknown_release(target, deployed):
    bundle, release = deployed
    assert bench_remote(target, bundle=bundle, iterations=2, show_progress=False).release == release.release_id
    with pytest.raises(RemoteError, match="no release 0123456789abcdef at"):
        bench_remote(target, release="0123456789abcdef", iterations=2, show_progress=False)


def test_hanging_remote_runner_is_killed_at_the_deadline(target, deployed, work):
    from edge_sdk.remote import deploy

    bundle, _ = deployed
    hung = deploy(with_runner(bundle, work / "hangs", HANGING_RUNNER), target)
    pidfile = work / "device" / "releases" / f"{hung.release_id}.pids"  # the fake runner writes it beside itself
    t0 = time.monotonic()
    try:
        with pytest.raises(RemoteError, match=r"did not finish within 2\.1s and was killed") as info:
            bench_remote(target, release=hung.release_id, iterations=5, timeout_s=1, show_progress=False)
        assert info.value.exit_code == 5 and time.monotonic() - t0 < 30
    finally:
        from edge_sdk.remote import rollback

        rollback(target)  # put the working release back as `current` for the other tests
    runner_pid, child_pid = map(int, pidfile.read_text().split())
    assert not alive(runner_pid) and not alive(child_pid)


def test_cli_bench_target_json(target_file, deployed, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edge_sdk", "bench", "--target", str(target_file), "--iterations",
                           "5", "--batch", "1,2", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = BenchResult.model_validate(json.loads(proc.stdout))
    assert r.target == "loop" and r.release == deployed[1].release_id and len(r.batches) == 2
    assert len(list((tmp_path / "results" / "loop").glob("*.json"))) == 1


def test_every_device_command_starts_through_one_path(target, deployed, work, monkeypatch):
    """probe, bench, release operations and kill: all `python -B -m edge_device COMMAND` via remote.device, with the
    host's package uploaded content-addressed under the workdir for the commands that need no release."""
    from pathlib import Path

    from edge_sdk.bundle.device_package import package_hash
    from edge_sdk.profiles import load_registry
    from edge_sdk.remote import RemoteTimeout, Session, check_target, device, verify_release

    made, ran = [], []
    real_argv, real_run = device.device_argv, Session.run
    monkeypatch.setattr(device, "device_argv", lambda *a: made.append(a[1]) or real_argv(*a))
    monkeypatch.setattr(Session, "run", lambda self, argv, **kw: ran.append(list(argv)) or real_run(self, argv, **kw))
    assert check_target(target, load_registry().resolve(target.profile)[0]).facts.python
    assert bench_remote(target, iterations=2, warmup=0, show_progress=False).batches
    assert verify_release(target).ok
    with Session(target) as s:
        with pytest.raises(RemoteTimeout):
            s.run(["sleep", "30"], timeout=1, kill_grace_s=0.5)
    assert made == ["probe", "bench", "release", "kill"]
    pythons = [a for a in ran if a[0] == target.python]
    assert len(pythons) == 3 and all(a[1:4] == ["-B", "-m", "edge_device"] for a in pythons)
    assert (Path(target.remote_workdir) / ".edge_device" / package_hash() / "edge_device" / "__main__.py").is_file()


def test_bench_remote_uploads_the_reference_kernel_once_and_probes_with_it(target, deployed, tmp_path, monkeypatch):
    from pathlib import Path

    from edge_sdk.calibration.run import SUITE_DIR_ON_DEVICE
    from edge_sdk.calibration.scope import calibrated_runtimes, suite_place
    from edge_sdk.profiles import load_registry
    from test_bench_local import _tiny_suite

    monkeypatch.setenv("EDGE_SDK_CACHE", str(tmp_path / "cache"))
    host, _ = load_registry().resolve("host")
    _tiny_suite(suite_place(host, calibrated_runtimes(host))[0])
    r = bench_remote(target, iterations=3, warmup=0, show_progress=False, calibrations_dir=tmp_path / "none")
    p = r.machine.reference_probe
    assert p is not None and p.kernel == "ref" and p.ms > 0 and p.after_ms > 0
    uploaded = Path(target.remote_workdir) / SUITE_DIR_ON_DEVICE / "tiny-reference"  # loopback: the same disk
    assert sorted(f.name for f in uploaded.iterdir()) == ["ref.onnx", "suite.json"]
    r = bench_remote(target, iterations=3, warmup=0, show_progress=False, calibration=False)
    assert r.machine.reference_probe is None  # --no-calibration: nothing to compare with, nothing timed
