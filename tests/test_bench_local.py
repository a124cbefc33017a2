"""`bench_local` and `edge-sdk bench --local`: the bundle's own runner in a temporary copy, end to end."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.benchmark import BenchResult, bench_local
from edge_sdk.bundle import Manifest, bundle_id, pack_archive
from edge_sdk.errors import InputError, RemoteError
from test_bench_inputs import make_bundle


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-local")


@pytest.fixture(scope="module")
def bundle(work):
    return make_bundle(work / "onnx", cache_dir=work)


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def tree_snapshot(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


HANGING_RUNNER = """import json, os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)   # only SIGKILL ends it
child = subprocess.Popen(["sleep", "300"])       # and it leaves a child behind
pidfile = os.environ.get("HANG_PIDFILE") or os.path.abspath(sys.argv[sys.argv.index("--bundle") + 1]) + ".pids"
with open(pidfile, "w") as f:
    f.write("%d %d" % (os.getpid(), child.pid))
print(json.dumps({"event": "start"}), flush=True)
while True:
    time.sleep(1)
"""


def with_runner(src_bundle: Path, dst: Path, runner_source: str) -> Path:
    """A copy of a bundle whose device entry point (edge_device/__main__.py) is replaced, with the manifest updated
    so the bundle still verifies."""
    import shutil

    shutil.copytree(src_bundle, dst)
    runner = dst / "edge_device" / "__main__.py"
    runner.write_text(runner_source)
    m = Manifest.model_validate_json((dst / "manifest.json").read_text())
    m.files["edge_device/__main__.py"] = m.files["edge_device/__main__.py"].model_copy(
        update={"sha256": hashlib.sha256(runner.read_bytes()).hexdigest(), "size_bytes": runner.stat().st_size})
    (dst / "manifest.json").write_text(m.model_dump_json(indent=2))
    return dst


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_bench_local_runs_a_copy_and_leaves_the_bundle_alone(bundle):
    before = tree_snapshot(bundle)
    r = bench_local(bundle, iterations=10, warmup=1, batches=[1, 2], threads=1, show_progress=False)
    assert isinstance(r, BenchResult) and r.target == "local"
    assert [(b.inputs, b.batch, b.iterations) for b in r.batches] == [("padded", 1, 10), ("padded", 2, 10)]
    assert r.bundle_sha256 == hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    assert len(r.bundle_id) == 16 and r.threads == 1 and not r.fell_back
    assert r.bundle_id == bundle_id(Manifest.model_validate_json((bundle / "manifest.json").read_text()).files)
    assert r.bundle_path == str(bundle.resolve())
    assert r.predicted_over_measured == pytest.approx(2.0 / r.batches[0].latency_ms.p50)
    assert tree_snapshot(bundle) == before  # nothing written into the user's bundle (no __pycache__ either)


def test_bench_local_accepts_an_edgepkg_archive(bundle, work):
    pkg = pack_archive(bundle, work / "tiny.edgepkg")
    r = bench_local(pkg, iterations=3, warmup=0, show_progress=False)
    assert r.batches[0].iterations == 3


def test_bench_local_refuses_a_modified_bundle(bundle, work):
    import shutil

    bad = work / "modified"
    shutil.copytree(bundle, bad)
    with open(bad / "inputs" / "samples.npz", "ab") as f:
        f.write(b"x")
    with pytest.raises(InputError, match="samples.npz: size"):
        bench_local(bad, iterations=3, show_progress=False)


def test_runner_stopping_at_its_deadline_is_reported(bundle):
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match="hit its deadline") as info:
        bench_local(bundle, iterations=10 ** 9, timeout_s=2, show_progress=False)
    assert info.value.exit_code == 5 and time.monotonic() - t0 < 30


def test_hanging_runner_is_killed_with_its_children(bundle, work, tmp_path, monkeypatch):
    hung = with_runner(bundle, work / "hangs", HANGING_RUNNER)
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("HANG_PIDFILE", str(pidfile))
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match=r"did not finish within 2\.1s and was killed") as info:
        bench_local(hung, iterations=5, timeout_s=1, show_progress=False)
    assert info.value.exit_code == 5 and time.monotonic() - t0 < 20
    runner_pid, child_pid = map(int, pidfile.read_text().split())
    assert not alive(runner_pid) and not alive(child_pid)


def test_cli_bench_local_json_end_to_end(bundle, tmp_path):
    proc = cli("bench", "--local", "--bundle", str(bundle), "--batch", "1,3", "--iterations", "8", "--warmup", "1",
               "--threads", "1", "--json", "--results-dir", "res", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    r = BenchResult.model_validate(data)
    assert set(data["latency_ms"]) == {"mean", "p50", "p90", "p95", "p99", "min", "max", "std"}
    assert data["latency_ms"] == data["batches"][0]["latency_ms"] and [b.batch for b in r.batches] == [1, 3]
    saved = list((tmp_path / "res" / "local").glob("*.json"))
    assert len(saved) == 1 and f"saved {saved[0].relative_to(tmp_path)}" in proc.stderr
    assert BenchResult.model_validate_json(saved[0].read_text()) == r


def test_cli_bench_local_table(bundle, tmp_path):
    proc = cli("bench", "--local", "--bundle", str(bundle), "--iterations", "5", "--inputs", "real", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("p50", "p99", "items/s", "onnxruntime", "model load", "peak RSS", "predicted 2 ms",
                   "predicted/measured"):
        assert needle in out, needle


@pytest.mark.parametrize("args, needle", [
    (["--local"], "--local needs --bundle"),
    (["--local", "--bundle", "B", "--iterations", "5", "--duration", "1"], "exclude each other"),
    (["--local", "--bundle", "B", "--batch", "1,x"], "--batch: expected comma-separated"),
    (["--local", "--bundle", "B", "--inputs", "short"], "--inputs: expected"),
    (["--local", "--bundle", "B", "--timeout", "0"], "--timeout:"),
    (["--bundle", "B"], "exactly one of --local"),
    (["--local", "--bundle", "does-not-exist"], "bundle not found"),
])
def test_cli_bad_input_is_one_line_exit_2(bundle, tmp_path, args, needle):
    args = [str(bundle) if a == "B" else a for a in args]
    proc = cli("bench", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_cli_hanging_runner_exits_5(bundle, work, tmp_path):
    hung = work / "hangs-cli"
    if not hung.exists():
        with_runner(bundle, hung, HANGING_RUNNER)
    env = dict(os.environ, HANG_PIDFILE=str(tmp_path / "pids"))
    proc = subprocess.run([sys.executable, "-m", "edge_sdk", "bench", "--local", "--bundle", str(hung),
                           "--timeout", "1"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 5
    assert "did not finish within" in proc.stderr and "killed" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("results/*/*.json"))  # nothing saved for a failed run


def _tiny_suite(d: Path) -> Path:
    """A calibration suite directory with only its reference kernel (a 16x64 @ 64x64 MatMul)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    d.mkdir(parents=True, exist_ok=True)
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "ref",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 64])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(d / "ref.onnx"))
    (d / "suite.json").write_text(json.dumps({"key": "tiny", "reference": "ref", "kernels": [
        {"name": "ref", "file": "ref.onnx", "format": "onnx", "inputs": {"x": [16, 64]}}]}))
    return d


def test_device_bench_times_the_calibration_reference_kernel_around_the_run(bundle, tmp_path):
    suite = _tiny_suite(tmp_path / "suite")
    argv = [sys.executable, "-B", "-m", "edge_device", "bench", "--bundle", ".", "--iterations", "5", "--warmup", "0"]
    run = subprocess.run(argv + ["--probe-suite", str(suite)], cwd=bundle, capture_output=True, text=True, timeout=120)
    probe = json.loads(run.stdout.strip().splitlines()[-1])["machine"]["reference_probe"]
    assert run.returncode == 0 and probe["kernel"] == "ref" and probe["ms"] > 0 and probe["after_ms"] > 0
    run = subprocess.run(argv + ["--probe-suite", str(tmp_path / "nowhere")], cwd=bundle, capture_output=True,
                         text=True, timeout=120)
    probe = json.loads(run.stdout.strip().splitlines()[-1])["machine"]["reference_probe"]
    assert run.returncode == 0 and "nowhere" in probe["reason"] and "ms" not in probe


def test_bench_local_probes_the_cached_suite_and_compares_with_the_calibration(bundle, tmp_path, monkeypatch):
    from edge_sdk.benchmark.prediction import compare_probe
    from edge_sdk.calibration.scope import cached_suite, calibrated_runtimes, suite_place
    from edge_sdk.profiles import load_registry
    from edge_sdk.schemas.bench import MachineState, ReferenceProbe

    monkeypatch.setenv("EDGE_SDK_CACHE", str(tmp_path / "cache"))
    host, _ = load_registry().resolve("host")
    assert cached_suite(host) is None  # never built by bench: only what calibrate left in the cache
    where, _ = suite_place(host, calibrated_runtimes(host))
    _tiny_suite(where)
    assert cached_suite(host) == where
    r = bench_local(bundle, iterations=5, warmup=0, calibrations_dir=tmp_path / "no-calibrations")
    p = r.machine.reference_probe
    assert p is not None and p.kernel == "ref" and p.ms > 0 and p.ratio is None  # no calibration to compare with
    # against a calibration: the faster timing around the run over the calibrated time; a warning past 10 %
    m = MachineState(cpu_count=2, load_avg_before=None, governors=None, cur_mhz=None,
                     reference_probe=ReferenceProbe(kernel="ref", ms=0.50, after_ms=0.40))
    compare_probe(m, 0.32, same_threads=True)
    assert m.reference_probe.ratio == pytest.approx(1.25) and "1.25x" in m.warnings[0] and "slower" in m.warnings[0]
    m = MachineState(cpu_count=2, load_avg_before=None, governors=None, cur_mhz=None,
                     reference_probe=ReferenceProbe(kernel="ref", ms=0.33, after_ms=0.50))
    compare_probe(m, 0.32, same_threads=True)
    assert m.reference_probe.ratio == pytest.approx(0.33 / 0.32, abs=1e-3) and m.warnings == []
    compare_probe(m, 0.20, same_threads=False)  # timed with other threads than the calibration: not comparable
    assert m.reference_probe.ratio == pytest.approx(0.33 / 0.32, abs=1e-3)
