"""`edge-sdk targets check` against the real loopback sshd: facts from the host, contradictions with the profile."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ssh
REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


@pytest.fixture(scope="module")
def as_root(sshd):
    """This test's interpreter (with numpy/onnxruntime/ai-edge-litert) lives where only root may read it."""
    if os.geteuid() != 0 and sshd.user != "root":
        pytest.skip("needs the interpreter of this test run on the device side (run as root, or as its owner)")
    sshd.server.authorize("root")
    return "root"


def check(target: Path, *extra: str) -> tuple[int, dict, str]:
    r = cli("targets", "check", str(target), "--json", *extra)
    assert "Traceback" not in r.stderr
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


def test_host_matching_its_profile_passes(sshd, as_root, tmp_path):
    t = sshd.write_target(tmp_path, "good", user=as_root, python=sys.executable)
    rc, res, err = check(t)
    assert rc == 0, (res, err)
    f = res["facts"]
    assert res["ok"] and res["problems"] == [] and res["profile"] == "host"
    assert f["arch"] == platform.machine() and f["python"] == platform.python_version()
    import numpy
    import onnxruntime

    assert f["packages"]["numpy"] == numpy.__version__ and f["packages"]["onnxruntime"] == onnxruntime.__version__
    assert f["mem_total_bytes"] > 0 and f["disk_free_bytes"] > 0 and f["cpu_count"] == os.cpu_count()
    r = cli("targets", "check", str(t))  # the table form
    assert r.returncode == 0 and "architecture" in r.stdout and "ok" in r.stdout


def test_wrong_architecture_no_runtime_no_numpy_are_problems(sshd, tmp_path):
    bare = subprocess.run(["/usr/bin/python3", "-c", "import numpy"], capture_output=True).returncode != 0
    t = sshd.write_target(tmp_path, "jet", profile="jetson", python="/usr/bin/python3")
    rc, res, _ = check(t)
    assert rc == 1 and not res["ok"] and res["profile"] == "jetson-orin-nano"
    assert any(p.startswith(f"architecture: profile 'jetson-orin-nano' says aarch64, host is {platform.machine()}")
               for p in res["problems"])
    if bare:  # the system python has no numpy/runtimes here: both must be reported
        assert any(p.startswith("numpy: not installed") for p in res["problems"])
        assert any(p.startswith("runtime: none of the profile's runtimes is installed") for p in res["problems"])


def test_memory_smaller_than_profile_is_a_problem(sshd, as_root, tmp_path):
    prof = yaml.safe_load((REPO / "device_profiles" / "host.yaml").read_text())
    prof.update(name="big-host", aliases=[], memory_total_gb=4096, memory_usable_gb=4000)
    pdir = tmp_path / "profiles"
    pdir.mkdir()
    (pdir / "big-host.yaml").write_text(yaml.safe_dump(prof))
    t = sshd.write_target(tmp_path, "big", user=as_root, python=sys.executable, profile="big-host")
    rc, res, _ = check(t, "--profiles-dir", str(pdir))
    assert rc == 1
    assert len(res["problems"]) == 1 and res["problems"][0].startswith("memory: profile 'big-host' says 4096 GB")


def test_missing_python_is_reported_from_uname(sshd, tmp_path):
    t = sshd.write_target(tmp_path, "nopy", python="/nonexistent/python3")
    rc, res, _ = check(t)
    assert rc == 1 and res["facts"]["arch"] == platform.machine() and res["facts"]["python"] is None
    assert any("'/nonexistent/python3' not found" in p for p in res["problems"])
