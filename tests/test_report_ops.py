"""Operator checks: an op a runtime lacks is caught and shown, per runtime, with where it would run instead.

Graphs are built by hand with onnx.helper (a few nodes: planning and checking take about a second). The onnxruntime
CPU check creates real sessions; delegate/compiler checks use the shipped op lists.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_sdk.reporting import build_report
from edge_sdk.reporting.op_data import OP_SUPPORT_DIR, load_support_file, support_for, support_lists, tflite_mapping

DEVICES = "host,jetson-nano,jetson-orin-nx,apple-a17-pro,coral-dev-board"


def _graph(path, *, custom: bool = False):
    """x[batch,16] -> MatMul -> Add -> Mod -> Erf (-> com.example.nonexistent:FancyOp) -> y."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "W"),
             numpy_helper.from_array(np.zeros(16, np.float32), "B"),
             numpy_helper.from_array(np.full(16, 3.0, np.float32), "D")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["h2"]),
             helper.make_node("Mod", ["h2", "D"], ["m"], fmod=1),
             helper.make_node("Erf", ["m"], ["e" if custom else "y"])]
    opsets = [helper.make_opsetid("", 17)]
    if custom:
        nodes.append(helper.make_node("FancyOp", ["e"], ["y"], domain="com.example.nonexistent"))
        opsets.append(helper.make_opsetid("com.example.nonexistent", 1))
    g = helper.make_graph(nodes, "handmade", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])], inits)
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _cov(report, device, runtime, provider):
    d = report.device(device)
    return next(c for c in d.coverage if (c.runtime, c.provider) == (runtime, provider))


@pytest.fixture(scope="module")
def mod_report(tmp_path_factory):
    path = _graph(tmp_path_factory.mktemp("ops") / "mod.onnx")
    return build_report(str(path), devices=DEVICES, results_dir=None, tflite="map")


def test_graph_ops_are_listed_with_counts(mod_report):
    g = mod_report.graph
    assert g.status == "onnx_file"
    assert {o.op: o.count for o in g.ops} == {"MatMul": 1, "Add": 1, "Mod": 1, "Erf": 1}
    # onnxruntime's basic optimizer fused MatMul+Add into Gemm in the fixed-shape graph
    assert {o.op for o in g.static_ops} == {"Gemm", "Mod", "Erf"}
    assert g.static_shape == {"batch": 1}
    assert g.tflite_status == "mapped" and g.tflite_unmapped == ["Mod"]


def test_ort_cpu_runs_it_for_real(mod_report):
    assert mod_report.ort_cpu.session_created
    c = _cov(mod_report, "host", "onnxruntime", "CPUExecutionProvider")
    assert c.check == "session" and c.verdict == "full" and not c.issues


def test_tensorrt8_refuses_mod_and_the_ort_trt_ep_falls_back(mod_report):
    nano = mod_report.device("jetson-nano")
    trt = _cov(mod_report, "jetson-nano", "tensorrt", "gpu")
    assert trt.verdict == "fails" and trt.data_file == "tensorrt-8.yaml"
    assert [i.op for i in trt.issues] == ["Mod"]
    assert trt.source_url.startswith("https://") and trt.data_version == "8.4" and trt.confidence == "vendor"
    assert "8.2" in trt.version_note  # the profile pins 8.2, the list describes 8.4: said, not hidden
    ep = _cov(mod_report, "jetson-nano", "onnxruntime", "TensorrtExecutionProvider")
    assert ep.verdict == "partial" and ep.data_file == "tensorrt-8.yaml"  # the EP runs on the device's TensorRT 8
    assert ep.fallback_to and ep.silent
    # the best plan uses TensorRT on the GPU: it cannot run as exported
    assert nano.verdict == "cannot_run"
    assert any("Mod" in r for r in nano.reasons)
    assert any("Mod" in f for f in nano.fallback_flags)


def test_newer_tensorrt_has_mod_but_the_dla_does_not(mod_report):
    assert _cov(mod_report, "jetson-orin-nx", "tensorrt", "gpu").verdict == "full"
    dla = _cov(mod_report, "jetson-orin-nx", "tensorrt", "dla")
    assert dla.verdict == "partial" and dla.fallback_to == "gpu"
    assert {i.op for i in dla.issues} == {"Mod", "Erf"}
    assert dla.nodes_on_unit == 1  # the Gemm: its weights are constant, so it maps to the DLA
    flags = mod_report.device("jetson-orin-nx").fallback_flags
    assert any("tensorrt/dla" in f and "Mod" in f and "gpu" in f for f in flags)


def test_coreml_and_edge_tpu_flag_the_op(mod_report):
    coreml = _cov(mod_report, "apple-a17-pro", "onnxruntime", "CoreMLExecutionProvider")
    assert coreml.verdict == "partial" and [i.op for i in coreml.issues] == ["Mod"]
    tpu = _cov(mod_report, "coral-dev-board", "litert", "edgetpu")
    assert tpu.op_level == "tflite" and tpu.graph == "tflite_mapped"
    statuses = {i.op: i.status for i in tpu.issues}
    assert statuses["Mod (no TFLite builtin)"] == "no_builtin"
    # the Edge TPU compiler partitions once: everything after the first unsupported op runs on the CPU
    assert "after_first_unsupported" in statuses.values()
    assert any("int8" in n for n in tpu.notes)
    xnn = _cov(mod_report, "coral-dev-board", "litert", "xnnpack")
    assert xnn.verdict == "fails"  # a LiteRT conversion would need a custom op for Mod


def test_unknown_domain_op_is_reported_not_raised(tmp_path):
    path = _graph(tmp_path / "custom.onnx", custom=True)
    rep = build_report(str(path), devices="host,jetson-orin-nx", results_dir=None)  # tflite auto
    assert rep.graph.tflite_status == "mapped" and "no PyTorch model to convert" in rep.graph.tflite_note
    ort = rep.ort_cpu
    assert not ort.session_created
    assert "FancyOp" in ort.error and "com.example.nonexistent:FancyOp" in ort.ops_without_kernel
    cpu = _cov(rep, "host", "onnxruntime", "CPUExecutionProvider")
    assert cpu.verdict == "fails"
    assert [i.op for i in cpu.issues] == ["com.example.nonexistent:FancyOp"]
    host = rep.device("host")
    assert host.verdict == "cannot_run" and any("FancyOp" in r for r in host.reasons)
    # onnxruntime could not fold the graph either: the report says so and checks the graph as exported
    assert "fixed-shape graph could not be made" in rep.graph.note
    trt = _cov(rep, "jetson-orin-nx", "tensorrt", "gpu")
    assert "com.example.nonexistent:FancyOp" in {i.op for i in trt.issues}


def test_every_shipped_op_list_names_version_source_and_confidence():
    lists = support_lists()
    assert len(lists) >= 10
    for lst in lists:
        assert lst.runtime_version and lst.source_url.startswith("https://") and lst.checked.strip()
        assert lst.confidence in ("vendor", "secondary", "unverified")
        assert lst.ops, lst.file
    titles = " ".join(lst.title for lst in lists)
    for needle in ("TensorRT 10", "TensorRT 8", "DLA", "CoreML", "QNN", "GPU delegate", "Edge TPU", "NNAPI", "VX",
                   "TIDL"):
        assert needle in titles, needle
    tpu = next(lst for lst in lists if lst.file == "edgetpu.yaml")
    assert tpu.precisions == ["int8"] and tpu.first_unsupported_stops
    assert tflite_mapping().map["MatMul"].then == ["FULLY_CONNECTED"]


def test_version_selection_prefers_the_pinned_major():
    assert support_for("tensorrt", "gpu", "8.2")[0].file == "tensorrt-8.yaml"
    assert support_for("tensorrt", "gpu", "10.3")[0].file == "tensorrt-10.yaml"
    lst, _, note = support_for("tensorrt", "gpu", None)
    assert lst.file == "tensorrt-10.yaml" and "no version" in note
    assert support_for("litert", "xnnpack", None) is None


def test_a_broken_op_list_names_file_and_field(tmp_path):
    from edge_sdk.errors import InputError

    bad = tmp_path / "bad.yaml"
    bad.write_text((OP_SUPPORT_DIR / "ort-coreml.yaml").read_text().replace("confidence: vendor",
                                                                           "confidence: pretty sure"))
    with pytest.raises(InputError, match=r"bad.yaml: field 'confidence'"):
        load_support_file(bad)
