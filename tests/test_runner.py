"""The device side's benchmark, run as the device runs it: `python3 -m edge_device bench --bundle DIR` from the bundle
directory in a subprocess, on real bundles (tiny BERT in onnxruntime, a static-shape graph in ai-edge-litert)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge_sdk.benchmark.parse import result_from_runner
from edge_sdk.schemas.bench import BenchSettings
from edge_sdk.bundle.device_package import PACKAGE_SRC
from test_bench_inputs import TFLITE_SEQ, make_bundle, sample_arrays

PY = sys.executable


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("runner")


@pytest.fixture(scope="module")
def onnx_bundle(work):
    return make_bundle(work / "onnx", cache_dir=work)


@pytest.fixture(scope="module")
def tflite_bundle(work):
    return make_bundle(work / "tflite", fmt="tflite", cache_dir=work)


def run_runner(bundle: Path, *args: str, env: dict | None = None, timeout: float = 120):
    """(exit code, [events], stderr) of one `edge_device bench` process, started from the bundle directory."""
    proc = subprocess.run([PY, "-B", "-m", "edge_device", "bench", "--bundle", str(bundle), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=bundle)
    events = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return proc.returncode, events, proc.stderr


def test_device_package_is_standalone_python38_source():
    """Every module: Python 3.8 syntax, only relative imports inside the package, else stdlib + numpy + a runtime."""
    files = sorted(PACKAGE_SRC.rglob("*.py"))
    assert len(files) >= 15
    for path in files:
        depth = len(path.relative_to(PACKAGE_SRC).parts)  # 1 for top-level modules, 2 for engines/*
        tree = ast.parse(path.read_text(), feature_version=(3, 8))  # no syntax newer than Python 3.8
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.level <= depth, f"{path}: relative import leaves the package"
                else:
                    imported.add((node.module or "").split(".")[0])
        assert "edge_sdk" not in imported, path
        # the runtimes engines import when their format is asked for, and numpy/tokenizers
        allowed_third_party = {"numpy", "onnxruntime", "onnxruntime_genai", "openvino", "tokenizers"}
        stdlib = set(sys.stdlib_module_names)
        assert imported - stdlib <= allowed_third_party, (path, imported - stdlib)


def test_onnx_runner_output_parses_into_bench_result(onnx_bundle, tmp_path):
    # An `edge_sdk` that explodes on import, ahead of the real one on the path: the runner must not need it.
    poison = tmp_path / "poison" / "edge_sdk"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise ImportError('the runner must not import edge_sdk')\n")
    env = dict(os.environ, PYTHONPATH=str(poison.parent))
    rc, events, err = run_runner(onnx_bundle, "--inputs", "all", "--batch", "1,3", "--iterations", "20",
                                 "--warmup", "2", "--threads", "1", env=env)
    assert rc == 0, err
    assert events[0]["event"] == "start" and events[-1]["event"] == "result"
    progress = [e["done"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 80 and 8 <= len(progress) <= 11
    res = events[-1]
    assert [(r["inputs"], r["batch"]) for r in res["runs"]] == [("real", 1), ("real", 3), ("padded", 1),
                                                               ("padded", 3)]
    assert res["runs"][3]["shapes"] == {"input_ids": [3, 32], "attention_mask": [3, 32]}
    assert all(len(r["latencies_ms"]) == 20 and min(r["latencies_ms"]) > 0 for r in res["runs"])
    assert res["provider_used"] == "CPUExecutionProvider" and res["fell_back"] is False
    assert res["runtime_version"] and res["peak_rss_mb"] > res["rss_before_load_mb"] > 0
    assert res["model_load_ms"] > 0 and res["first_inference_ms"] > 0 and res["threads"] == 1

    settings = BenchSettings(iterations=20, warmup=2, batches=[1, 3], inputs="all", threads=1)
    r = result_from_runner(res, settings=settings, target="local", bundle_id="b")
    assert [b.batch for b in r.batches] == [1, 3, 1, 3] and r.input_kind == "real+padded"
    assert r.latency_ms == r.batches[0].latency_ms
    padded1 = r.batches[2]
    assert r.predicted_latency_ms == 2.0
    assert r.predicted_over_measured == pytest.approx(2.0 / padded1.latency_ms.p50)
    assert "padded inputs, batch 1" in r.compared_with


def test_fallback_is_flagged_when_the_provider_is_missing(work):
    bundle = make_bundle(work / "cuda", provider="CUDAExecutionProvider", cache_dir=work)
    rc, events, err = run_runner(bundle, "--iterations", "3", "--warmup", "0")
    assert rc == 0, err
    res = events[-1]
    assert res["provider_requested"] == "CUDAExecutionProvider"
    assert res["provider_used"] == "CPUExecutionProvider"
    assert res["fell_back"] is True and "not available" in res["fallback_reason"]


def test_tampered_model_is_refused(work):
    bundle = make_bundle(work / "tampered", cache_dir=work)
    model = bundle / "model" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    rc, events, _ = run_runner(bundle, "--iterations", "3")
    assert rc == 3
    assert [e["event"] for e in events] == ["error"]
    assert "sha256 of model/model.onnx" in events[0]["message"] and "refusing" in events[0]["message"]


def test_runner_honours_its_deadline(onnx_bundle):
    t0 = time.monotonic()
    rc, events, _ = run_runner(onnx_bundle, "--iterations", str(10 ** 9), "--deadline-s", "2", timeout=60)
    assert rc == 124
    assert events[-1]["event"] == "error" and "deadline of 2s" in events[-1]["message"]
    assert time.monotonic() - t0 < 30


def test_duration_mode(onnx_bundle):
    rc, events, err = run_runner(onnx_bundle, "--duration", "0.3", "--warmup", "1", "--batch", "2")
    assert rc == 0, err
    run = events[-1]["runs"][0]
    assert run["iterations"] == len(run["latencies_ms"]) >= 2
    assert run["wall_s"] >= 0.3
    assert {e["unit"] for e in events if e["event"] == "progress"} == {"seconds"}


def test_tflite_static_shapes_are_padded_truncated_and_cast(tflite_bundle):
    rc, events, err = run_runner(tflite_bundle, "--inputs", "all", "--batch", "1,2", "--iterations", "5")
    assert rc == 0, err
    res = events[-1]
    assert res["runtime"] == "litert" and res["runtime_module"] == "ai_edge_litert"
    assert res["runtime_version"] == "2.3.0" and res["provider_used"] == "xnnpack" and not res["fell_back"]
    # real rows have 12 tokens (zero-padded up to 16), padded rows 32 (truncated to 16); inputs matched by
    # the manifest's order since the graph calls them serving_default_args_N:0
    shapes = [list(r["shapes"].values()) for r in res["runs"]]
    assert shapes == [[[1, TFLITE_SEQ]] * 2, [[2, TFLITE_SEQ]] * 2, [[1, TFLITE_SEQ]] * 2, [[2, TFLITE_SEQ]] * 2]


def test_tflite_missing_delegate_falls_back_to_cpu(work):
    bundle = make_bundle(work / "edgetpu", fmt="tflite", provider="edgetpu", cache_dir=work)
    rc, events, err = run_runner(bundle, "--iterations", "2")
    assert rc == 0, err
    res = events[-1]
    assert res["provider_requested"] == "edgetpu" and res["provider_used"] == "xnnpack"
    assert res["fell_back"] and "libedgetpu.so.1" in res["fallback_reason"]


def test_missing_runtime_is_a_clear_error(onnx_bundle, tmp_path):
    fake = tmp_path / "no-ort" / "onnxruntime"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    rc, events, _ = run_runner(onnx_bundle, env=dict(os.environ, PYTHONPATH=str(fake.parent)))
    assert rc == 4
    assert "onnxruntime is not installed on this device" in events[-1]["message"]
    assert "pip install onnxruntime" in events[-1]["message"]


@pytest.mark.parametrize("args, code, needle", [
    (["--batch", "0"], 2, "positive integers"),
    (["--iterations", "5", "--duration", "1"], 2, "not allowed with"),
    (["--artifact", "model/other.onnx"], 2, "not one of the bundle's artifacts"),
])
def test_bad_arguments_are_one_error_event(onnx_bundle, args, code, needle):
    rc, events, _ = run_runner(onnx_bundle, *args)
    assert rc == code
    assert [e["event"] for e in events] == ["error"] and needle in events[0]["message"]


def test_missing_input_kind_names_what_is_there(work):
    only_real = {k: v for k, v in sample_arrays().items() if k.startswith("real/")}
    bundle = make_bundle(work / "only-real", samples=only_real, cache_dir=work)
    rc, events, _ = run_runner(bundle, "--inputs", "padded")
    assert rc == 2 and "no 'padded' arrays (they have: real)" in events[-1]["message"]
    rc, events, _ = run_runner(bundle, "--iterations", "2")  # auto: padded missing → real
    assert rc == 0 and events[-1]["runs"][0]["inputs"] == "real"


FAKE_TEGRASTATS = """#!/bin/sh
echo $$ > "{pidfile}"
while true; do
  echo "11-28-2026 10:00:00 RAM 2244/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@1510,0%@1510] \
EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] CV0@-256C CPU@47.5C SOC0@44.5C tj@48.25C VDD_IN 4000mW/4000mW \
VDD_CPU_GPU_CV 500mW/500mW VDD_SOC 1300mW/1300mW"
  echo "11-28-2026 10:00:01 RAM 2244/7620MB CPU@49.5C tj@50C VDD_IN 6000mW/5000mW VDD_SOC 1500mW/1400mW"
  sleep 0.05
done
"""


def test_tegrastats_is_read_when_present_and_stopped_after(onnx_bundle, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pidfile = tmp_path / "tegrastats.pid"
    exe = bindir / "tegrastats"
    exe.write_text(FAKE_TEGRASTATS.format(pidfile=pidfile))
    exe.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    rc, events, err = run_runner(onnx_bundle, "--duration", "0.5", "--warmup", "0", env=env)
    assert rc == 0, err
    ts = events[-1]["tegrastats"]
    assert ts["power_rail"] == "VDD_IN" and ts["samples"] >= 2
    assert ts["power_mw_mean"] == pytest.approx(5000, abs=1000) and ts["power_mw_max"] == 6000
    assert ts["temperatures_c_max"]["tj"] == 50.0 and "CV0" not in ts["temperatures_c_max"]  # -256C = off
    assert "RAM" not in ts["rails_mw_mean"] and ts["rails_mw_mean"]["VDD_SOC"] > 1000
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "tegrastats outlived the runner"


def test_tegrastats_parser_on_older_jetson_format():
    from edge_sdk.device import power as mod

    line = textwrap.dedent("""\
        RAM 1234/3964MB (lfb 3x4MB) SWAP 0/1982MB CPU [5%@102,off,off,3%@102] EMC_FREQ 0% GR3D_FREQ 0% \
        PLL@33C CPU@36.5C PMIC@100C GPU@34C AO@41.5C thermal@35.25C POM_5V_IN 2410/2410 POM_5V_GPU 0/0 \
        POM_5V_CPU 361/361""")
    s = mod.parse_tegrastats_line(line)
    assert s["rails_mw"] == {"POM_5V_IN": 2410, "POM_5V_GPU": 0, "POM_5V_CPU": 361}
    assert s["temps_c"]["thermal"] == 35.25 and len(s["temps_c"]) == 6
    summary = mod.summarize_tegrastats([s, mod.parse_tegrastats_line("POM_5V_IN 3410/2910")], 100)
    assert summary["power_rail"] == "POM_5V_IN" and summary["power_mw_mean"] == 2910.0
    assert mod.summarize_tegrastats([mod.parse_tegrastats_line("no numbers here")], 100) is None


def test_inputs_match_by_name_undecorated_name_then_manifest_order():
    from edge_sdk.device import inputs as mod
    from edge_sdk.device.errors import DeviceError

    arrays = {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "types"}
    specs = lambda *names: [{"name": n} for n in names]  # noqa: E731
    assert mod.match_inputs(specs("attention_mask", "input_ids"), arrays, []) == {"attention_mask": "mask",
                                                                               "input_ids": "ids"}
    got = mod.match_inputs(specs("serving_default_input_ids:0", "serving_default_attention_mask:0"), arrays, [])
    assert got == {"serving_default_input_ids:0": "ids", "serving_default_attention_mask:0": "mask"}
    got = mod.match_inputs(specs("args_0", "args_1"), arrays, ["input_ids", "attention_mask"])
    assert got == {"args_0": "ids", "args_1": "mask"}
    with pytest.raises(DeviceError, match="cannot match the model's inputs"):
        mod.match_inputs(specs("args_0", "args_1"), arrays, ["args_0", "args_1"])
