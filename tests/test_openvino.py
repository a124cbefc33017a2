"""OpenVINO as a runtime: planned where a profile lists it, built to a verified IR (fp32, NNCF int8 with accuracy
control, weight compression), run by the device package's engine, benchmarked by `bench --local`, and bad input
(an IR without its .bin, openvino missing on the device) refused with one clear line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.device.engines import open_engine
from edge_sdk.schemas.passes import ExportOpenvinoConfig

ROOT = Path(__file__).resolve().parents[1]
TINY_BERT = str(ROOT / "examples/configs/tiny-bert.json")
TINY_VIT = str(ROOT / "examples/configs/tiny-vit.json")


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


# ------------------------------------------------------------------------------------------------- planning
def test_host_plans_consider_openvino_and_write_its_pass():
    ps = edge_sdk.plan("minilm", device="host", runtime="openvino", top=5)
    assert ps.plans and all(p.runtime.name == "openvino" and p.runtime.format == "openvino" for p in ps.plans)
    for p in ps.plans:
        kinds = [x.kind for x in p.passes]
        assert kinds[-1] == "export_openvino" and "export_onnx" not in kinds
        ov = p.pass_of("export_openvino")
        want = {"fp32": "none", "bf16": "none", "int8_static": "int8", "int4_weight_only": "int4_weights"}[p.precision]
        assert ov.quantize == want
        assert ov.max_drop <= 0.02 / 2  # accuracy control stays inside the build's quality budget
    # weight compression is OpenVINO's LLM recipe; for encoders it measured slower than NNCF static int8
    assert any("int8_dynamic rejected: OpenVINO" in r.reason for r in ps.rejected)


def test_gpu_fp16_plans_compile_in_f16():
    ps = edge_sdk.plan(TINY_BERT, device="core-ultra-7-165h", runtime="openvino/GPU", top=10)
    fp16 = [p for p in ps.plans + ps.pareto if p.precision == "fp16"]
    assert fp16, [p.summary() for p in ps.plans]
    assert fp16[0].pass_of("export_openvino").inference_precision == "f16"


def test_a_runtime_edge_sdk_cannot_build_is_costed_and_named():
    ps = edge_sdk.plan(TINY_BERT, device="rk3588")
    assert all(p.runtime.name != "rknn" for p in ps.plans)
    assert any("rknn" in " ".join(r.alternatives) + r.reason for r in ps.rejected), ps.rejected


# ------------------------------------------------------------------------------------------------- building
@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory) -> Path:
    """tiny-bert, NNCF int8 with accuracy control, built through the public API from a planner plan."""
    out = tmp_path_factory.mktemp("ov") / "int8"
    ps = edge_sdk.plan(TINY_BERT, device="host", runtime="openvino", top=10)
    plan = next(p for p in ps.plans + ps.pareto if p.precision == "int8_static" and not p.pass_of("structured_prune"))
    edge_sdk.build(plan.model_copy(update={"model_spec": ps.model_spec}), out_dir=out, max_quality_drop=0.05,
                   calibration_samples=200)
    return out


def test_int8_build_is_an_ir_with_its_weights_and_settings(int8_bundle: Path):
    m = json.loads((int8_bundle / "manifest.json").read_text())
    art = m["artifacts"][0]
    assert (art["path"], art["format"], art["runtime"], art["provider"]) == ("model.xml", "openvino", "openvino", "CPU")
    assert art["runtime_config"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert {"model.xml", "model.bin"} <= set(m["files"])
    assert m["quality"]["passed"] and m["quality"]["max_quality_drop"] == 0.05
    log = "\n".join(m["build_log"])
    assert "quantize_with_accuracy_control" in log and "OpenVINO vs PyTorch max abs diff" in log
    # NNCF inserted int8 quantization: the IR has FakeQuantize nodes (an fp32 IR has none)
    assert (int8_bundle / "model.xml").read_text().count('type="FakeQuantize"') > 4


def test_the_device_engine_runs_the_ir_like_the_build_measured_it(int8_bundle: Path):
    m = json.loads((int8_bundle / "manifest.json").read_text())
    art = m["artifacts"][0]
    eng = open_engine(str(int8_bundle / art["path"]), art["format"], art["provider"], 2,
                      runtime_config=art["runtime_config"])
    assert eng.runtime == "openvino" and eng.provider_used == "CPU" and eng.fallback_reason is None
    with np.load(int8_bundle / "sample_inputs.npz") as z:
        feed = {i["name"]: z[f"real/{i['name']}"][:1] for i in eng.inputs}
    out = eng.run(feed)
    emb = out["embeddings"]
    hidden = json.loads((ROOT / "examples/configs/tiny-bert.json").read_text())["hidden_size"]
    assert emb.shape == (1, hidden) and np.isfinite(emb).all()
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-3  # the in-graph pooling head L2-normalises


def test_the_plans_shape_runs_on_a_fixed_shape_compile_with_the_same_outputs(int8_bundle: Path):
    m = json.loads((int8_bundle / "manifest.json").read_text())
    art = m["artifacts"][0]
    shape = art["runtime_config"]["EDGE_SDK_STATIC_SHAPES"]
    assert shape == f"{m['plan']['batch']}x{m['plan']['seq_len']}"
    eng = open_engine(str(int8_bundle / art["path"]), "openvino", "CPU", 2, runtime_config=art["runtime_config"])
    dims = tuple(int(x) for x in shape.split("x"))
    assert set(eng.specialized) == {dims}
    with np.load(int8_bundle / "sample_inputs.npz") as z:
        padded = {i["name"]: z[f"padded/{i['name']}"][:1] for i in eng.inputs}
        real = {i["name"]: z[f"real/{i['name']}"][:1] for i in eng.inputs}
    assert padded["input_ids"].shape == dims and real["input_ids"].shape != dims
    plain = open_engine(str(int8_bundle / art["path"]), "openvino", "CPU", 2,
                        runtime_config={"INFERENCE_PRECISION_HINT": "f32"})
    assert not plain.specialized
    out = eng.output_names.index("embeddings")
    a, b = eng.prepare(padded)()[out], plain.prepare(padded)()[out]
    assert float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))) > 0.9999  # same IR, fixed shape
    assert np.isfinite(eng.prepare(real)()[out]).all()  # other shapes run on the dynamic model


def test_bench_local_times_the_ir(int8_bundle: Path, tmp_path: Path):
    r = cli("bench", "--local", "--bundle", str(int8_bundle), "--iterations", "5", "--warmup", "1", "--json",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res["runtime"] == "openvino" and res["provider_used"] == "CPU"
    assert res["format"] == "openvino" and all(b["latency_ms"]["p50"] > 0 for b in res["batches"])


def test_profile_ops_reads_openvinos_counters_and_maps_them_to_layers(int8_bundle: Path, tmp_path: Path):
    """PERF_COUNT per-node times, written as a chrome trace and mapped to the plan's ModelSpec layers by the
    `__module.<path>/aten::op/…` names of an IR converted from PyTorch."""
    r = edge_sdk.bench(int8_bundle, iterations=10, warmup=2, batches=[1], threads=2, profile_ops=True,
                       profile_iterations=5, inputs="padded", results_dir=tmp_path)
    op = r.op_profile
    assert op is not None and op.available and op.runtime == "openvino" and op.iterations == 5
    spec = json.loads((int8_bundle / "manifest.json").read_text())["plan"]["model_spec"]
    layer_names = [x["name"] for x in spec["layers"]]
    measured = {x.layer: x for x in op.layers}
    blocks = sorted({x["block"] for x in spec["layers"] if x.get("block") is not None})
    assert len(blocks) >= 2
    for i in blocks:
        ffn = next(n for n in layer_names if f"layer.{i}." in n and n.endswith("intermediate.dense"))
        assert measured[ffn].measured_ms > 0 and measured[ffn].nodes >= 1, ffn  # its FullyConnected kernel
    fc = [n for n in op.nodes if n.op_type == "FullyConnected"]
    assert fc and all(n.layer != "(other)" for n in fc)
    assert op.layer_sum_ms and op.node_sum_ms and op.layer_sum_ms <= op.node_sum_ms + 1e-6
    assert op.run_ms and op.node_sum_ms <= 1.5 * op.run_ms  # counters of the runs the trace says ran
    traces = list(tmp_path.rglob("*.trace.json"))  # saved beside the result, for chrome://tracing / Perfetto
    assert len(traces) == 1 and sum(1 for e in json.loads(traces[0].read_text()) if e["name"] == "model_run") >= 5


def test_an_ir_without_its_bin_is_one_clear_error(int8_bundle: Path, tmp_path: Path):
    bad = tmp_path / "nobin"
    shutil.copytree(int8_bundle, bad)
    (bad / "model.bin").unlink()
    r = cli("bench", "--local", "--bundle", str(bad), "--iterations", "2", cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    assert "model.bin" in r.stderr and "Traceback" not in r.stderr
    # the engine itself, given a bare .xml, says the same
    with pytest.raises(Exception) as e:
        open_engine(str(bad / "model.xml"))
    assert "model.bin" in str(e.value) and getattr(e.value, "exit_code", 2) == 2


def test_openvino_missing_on_the_device_names_the_install_command(int8_bundle: Path):
    code = ("import sys; sys.modules['openvino'] = None\n"
            "from edge_sdk.device.engines import open_engine\n"
            f"open_engine({str(int8_bundle / 'model.xml')!r})\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0
    assert "openvino is not installed" in r.stderr and "pip install openvino" in r.stderr


def test_vision_fp32_ir_matches_pytorch(tmp_path: Path):
    from edge_sdk.builder.sources import load_for_build
    from edge_sdk.passes.export_openvino import convert

    loaded = load_for_build(TINY_VIT)
    ov_model, wrapper, names, feeds = convert(loaded.model, "vision")
    assert names == ["pixel_values"]
    from edge_sdk.passes.export_openvino import _verify, save

    save(ov_model, tmp_path / "model.xml")
    diffs = _verify(tmp_path / "model.xml", wrapper, names, feeds)  # raises when OpenVINO differs from PyTorch
    assert set(diffs) == {"last_hidden_state", "embeddings"}


def test_weight_compression_config_validates():
    assert ExportOpenvinoConfig(quantize="int4_weights", group_size=64).group_size == 64
    with pytest.raises(ValueError):
        ExportOpenvinoConfig(quantize="int3")
