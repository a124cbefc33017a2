"""Calibrations fitted to whole exported layers: the suite times real layers at several shapes (onnxruntime: one
layer at two widths; OpenVINO: 6-layer stacks compiled as bundles compile them), the fit recovers the efficiencies
(and OpenVINO's per-call cost) that made a set of layer timings, the cost model charges what each runtime's graph
runs beyond the ModelSpec's ops, calibration timings come from interleaved rounds, and version-1 files are refused."""

from __future__ import annotations

import json
import math

import pytest

from edge_sdk.calibration import find_calibration, load_calibration
from edge_sdk.calibration.fit import _encoder_ms, _fit_layers, _nonneg_lstsq, _planner_copy
from edge_sdk.calibration.suite import _CONFIG, LAYER_POINTS, OPENVINO_LAYER_POINTS, kernel_plan
from edge_sdk.errors import InputError
from edge_sdk.profiles import load_registry
from edge_sdk.schemas.calibration import CALIBRATION_SCHEMA_VERSION, Microbenchmark
from edge_sdk.schemas.profile import Efficiency, GemmTiming


@pytest.fixture(scope="module")
def host():
    return load_registry(host_profile="static").resolve("host")[0]


@pytest.fixture(scope="module")
def layer_specs():
    """ModelSpecs of the suite's layer kernels (built on the meta device: no weights, no export)."""
    import torch
    from transformers import BertConfig, BertModel

    from edge_sdk.modelspec import inspect_module

    out = {}
    for name, config, batch, seq, held in LAYER_POINTS:
        with torch.device("meta"):
            model = BertModel(BertConfig(**config))
        out[(name, batch, seq)] = (inspect_module(model, batch=batch, seq_len=seq), held)
    return out


def test_the_suite_times_exported_layers_at_two_widths_and_several_shapes_per_precision():
    plan = kernel_plan(("fp32", "int8_dynamic", "int8_static"))
    for prec in ("fp32", "int8_dynamic", "int8_static"):
        layers = [k for k in plan if k["kind"] == "layer" and k["precision"] == prec]
        assert {k["shape"]["hidden"] for k in layers} == {384, 768}
        assert len({(k["shape"]["batch"], k["shape"]["seq"]) for k in layers}) >= 4
        assert {k["shape"]["batch"] for k in layers} >= {1, 4}
        assert sum(k["held_out"] for k in layers) == 1 and all(k["runtimes"] == ["onnxruntime"] for k in layers)
        assert all(k["shape"]["layers"] == 1 for k in layers)  # microbenchmarks: one random-weight layer each
        # every (batch, seq) point has its own ModelSpec, and one exported file per width serves them all
        assert len({k["spec_file"] for k in layers}) == len(layers)
        assert all(k["inputs"]["input_ids"] == [k["shape"]["batch"], k["shape"]["seq"]] for k in layers)


def test_the_layer_fit_recovers_the_efficiencies_that_made_the_layer_timings(host, layer_specs):
    rt = next(r for r in host.runtimes if r.name == "onnxruntime")
    flop = lambda m, k, n: 2.0 * m * k * n  # noqa: E731 - a GEMM table at 2 ps/FLOP
    tables = {"int8_dynamic": [Microbenchmark(name=f"g{m}x{k}x{n}", kind="gemm", runtime="onnxruntime",
                                              provider="CPUExecutionProvider", precision="int8_dynamic",
                                              shape={"m": m, "k": k, "n": n}, flops=flop(m, k, n), bytes_moved=1.0,
                                              nodes=2, median_ms=flop(m, k, n) * 2e-9, iterations=5)
                               for m in (16, 1024) for k, n in ((384, 384), (384, 1536), (1536, 384), (768, 768),
                                                               (768, 3072), (3072, 768))]}
    planner = _planner_copy(host, rt, 20.0, tables)
    truth = Efficiency(compute=0.3, memory=0.6, per_op_overhead_us=1.5)
    points, held = [], []
    for (name, batch, seq), (spec, is_held) in layer_specs.items():
        ms = _encoder_ms(spec, planner, "int8_dynamic", truth)
        m = Microbenchmark(name=f"{name}_b{batch}s{seq}", kind="layer", runtime="onnxruntime",
                           provider="CPUExecutionProvider", precision="int8_dynamic", flops=0.0, bytes_moved=0.0,
                           nodes=100, median_ms=ms, iterations=5, held_out=is_held)
        (held if is_held else points).append((m, spec))
    specs = {m.name: s for m, s in points + held}
    c, mem, ov, run = _fit_layers([m for m, _ in points], specs, planner, "int8_dynamic", (0.05, 3.0, 8.0))
    got = Efficiency(compute=c, memory=mem, per_op_overhead_us=ov)
    for m, spec in points + held:  # the held-out point too: the fit generalises across batch and width
        assert _encoder_ms(spec, planner, "int8_dynamic", got) == pytest.approx(m.median_ms, rel=0.03), m.name
    assert (c, mem, ov) == pytest.approx((0.3, 0.6, 1.5), rel=0.05) and run == 0.0  # op by op: no per-call term


def test_the_openvino_suite_times_layer_stacks_compiled_as_bundles_compile_them():
    plan = [k for k in kernel_plan(("fp32", "int8_dynamic", "int8_static"), openvino=True)
            if k.get("runtimes") == ["openvino"]]
    assert {k["precision"] for k in plan} == {"fp32", "int8_static"}
    for prec in ("fp32", "int8_static"):
        mine = [k for k in plan if k["precision"] == prec]
        assert len(mine) == len(OPENVINO_LAYER_POINTS) and sum(k["held_out"] for k in mine) == 1
        assert {k["shape"]["layers"] for k in mine} == {1, 6}  # one layer alone keeps its weights in cache
        assert any(k["shape"]["hidden"] == _CONFIG["toy_bert"]["hidden_size"] for k in mine)  # per-call cost
        for k in mine:
            b, s = k["shape"]["batch"], k["shape"]["seq"]
            assert k["inputs"]["input_ids"] == [b, s] and k["kind"] == "layer"
            # f32 as bundles compile (not the bf16 the plugin picks on AVX512_BF16/AMX), at the point's fixed shape
            assert k["runtime_config"] == {"INFERENCE_PRECISION_HINT": "f32", "EDGE_SDK_STATIC_SHAPES": f"{b}x{s}"}
        # one IR per (encoder, depth) serves its shapes; every shape has its own ModelSpec
        assert len({k["ir"] for k in mine}) == len({(k["encoder"], k["shape"]["layers"]) for k in mine})
        assert len({k["spec_file"] for k in mine}) == len(mine)
    assert not [k for k in kernel_plan(("fp32",)) if k.get("runtimes") == ["openvino"]]


@pytest.fixture(scope="module")
def openvino_specs():
    import torch
    from transformers import BertConfig, BertModel

    from edge_sdk.modelspec import inspect_module

    out = {}
    for encoder, depth, batch, seq, held in OPENVINO_LAYER_POINTS:
        with torch.device("meta"):
            model = BertModel(BertConfig(**{**_CONFIG[encoder], "num_hidden_layers": depth}))
        out[f"{encoder}{depth}_b{batch}s{seq}"] = (inspect_module(model, batch=batch, seq_len=seq), held)
    return out


def test_the_openvino_fit_separates_per_call_from_per_op_cost(host, openvino_specs):
    rt = next(r for r in host.runtimes if r.name == "openvino")
    planner = _planner_copy(host, rt, 40.0, {})  # a graph-compiling runtime: no GEMM table
    # about what a 2-vCPU Zen 5 measures: a MiniLM-width int8 layer ~0.6 ms, the 6-layer toy stack ~0.15 ms
    truth = Efficiency(compute=3.5, memory=6.0, per_op_overhead_us=0.4, per_run_overhead_us=120.0)
    points, held = [], []
    for name, (spec, is_held) in openvino_specs.items():
        m = Microbenchmark(name=name, kind="layer", runtime="openvino", provider="CPU", precision="int8_static",
                           flops=0.0, bytes_moved=0.0, nodes=100, iterations=5, held_out=is_held,
                           median_ms=_encoder_ms(spec, planner, "int8_static", truth))
        (held if is_held else points).append((m, spec))
    specs = {m.name: s for m, s in points + held}
    c, mem, ov, run = _fit_layers([m for m, _ in points], specs, planner, "int8_static", (1.0, 1.0, 5.0),
                                  per_run=True)
    got = Efficiency(compute=c, memory=mem, per_op_overhead_us=ov, per_run_overhead_us=run)
    for m, spec in points + held:
        assert _encoder_ms(spec, planner, "int8_static", got) == pytest.approx(m.median_ms, rel=0.03), m.name
    assert run == pytest.approx(120.0, rel=0.1) and ov == pytest.approx(0.4, abs=0.2)
    # without the per-call term, per-op cost has to stand in for it: the points cannot all be matched
    c1, mem1, ov1, run1 = _fit_layers([m for m, _ in points], specs, planner, "int8_static", (1.0, 1.0, 5.0))
    without = Efficiency(compute=c1, memory=mem1, per_op_overhead_us=ov1)
    worst = max(abs(_encoder_ms(spec, planner, "int8_static", without) / m.median_ms - 1) for m, spec in points)
    assert run1 == 0.0 and worst > 0.06  # against 3 % with it (about 10 % here)


def test_the_overhead_slopes_the_layer_fit_finds_once_do_not_depend_on_compute_or_memory(host, layer_specs,
                                                                                         openvino_specs):
    """_fit_layers finds how each prediction moves per µs of per-op and per-call overhead at its start point only:
    true while `predict` adds the overheads to the roofline terms instead of, say, overlapping them (a max)."""
    table = [GemmTiming(m=m, k=k, n=n, ms=2e-9 * m * k * n) for m in (16, 1024)
             for k, n in ((384, 384), (384, 1536), (1536, 384), (768, 768), (768, 3072), (3072, 768))]
    cases = [("onnxruntime", {p: table for p in ("fp32", "int8_dynamic")}, [s for s, _ in layer_specs.values()]),
             ("openvino", {}, [s for s, _ in openvino_specs.values()])]
    for name, tables, specs in cases:
        rt = next(r for r in host.runtimes if r.name == name)
        planner = _planner_copy(host, rt, 20.0, {})
        for prec, tab in tables.items():
            planner[1].gemm_ms[prec] = tab
        for prec in ("fp32", "int8_dynamic", "int8_static"):
            for spec in specs[:4]:
                slopes = set()
                for c, m in ((0.01, 0.1), (1.0, 1.0), (3.0, 7.0)):
                    ms = lambda ov, run: _encoder_ms(spec, planner, prec, Efficiency(  # noqa: E731
                        compute=c, memory=m, per_op_overhead_us=ov, per_run_overhead_us=run))
                    base = ms(0.0, 0.0)
                    slopes.add((round(ms(1.0, 0.0) - base, 9), round(ms(0.0, 1.0) - base, 9)))
                assert len(slopes) == 1 and all(s > 0 for s in next(iter(slopes))), (name, prec, slopes)


def test_nonnegative_least_squares_of_two_overheads():
    k1, k2 = [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]
    assert _nonneg_lstsq(k1, k2, [a * 2 + b * 5 for a, b in zip(k1, k2)], (200, 5000)) == pytest.approx((2, 5))
    # the unconstrained solution would be negative: the best feasible edge instead
    a, b = _nonneg_lstsq(k1, k2, [x * 3 - 1 for x in k1], (200, 5000))
    assert a >= 0 and b == 0.0 and a == pytest.approx(sum(x * (x * 3 - 1) for x in k1) / sum(x * x for x in k1))
    assert _nonneg_lstsq(k1, [0.0] * 3, [2.0, 4.0, 6.0], (1.5, 5000)) == (1.5, 0.0)  # one overhead, capped


def _spec(model: str, **kw):
    import edge_sdk

    return edge_sdk.inspect(model, **kw)


def test_onnxruntime_pays_the_mask_softmax_and_nan_guard_passes_of_the_exported_graph(host):
    from edge_sdk.planner.costmodel import (ORT_MASKED_SOFTMAX_PASSES, ORT_STATIC_SOFTMAX_QDQ_PASSES, bandwidth_gbps,
                                            block_costs)

    unit = host.unit("cpu")
    ort = next(r for r in host.runtimes if r.name == "onnxruntime").model_copy(deep=True)
    eff = Efficiency(compute=0.5, memory=0.5, per_op_overhead_us=1)
    ort.efficiency = {"fp32": eff, "int8_dynamic": eff, "int8_static": eff}
    bytes_per_s = bandwidth_gbps(host, unit) * 1e9 * 0.5

    def softmax_s(spec, prec, rt=ort):
        sm = next(l for l in spec.layers if l.kind == "softmax")
        return block_costs(spec, host, unit, prec, runtime=rt).layer_s[sm.name], 2 * sm.activation_bytes / bytes_per_s

    bert = _spec("minilm", seq_len=256)  # masked: Add(mask), Softmax, IsNaN, Where over heads × seq²
    t, one_pass = softmax_s(bert, "fp32")
    assert t == pytest.approx(one_pass * ORT_MASKED_SOFTMAX_PASSES)
    assert softmax_s(bert, "int8_dynamic")[0] == pytest.approx(t)
    t8, _ = softmax_s(bert, "int8_static")  # + a Dequantize of the scores and a Quantize of the probabilities
    assert t8 == pytest.approx(one_pass * (ORT_MASKED_SOFTMAX_PASSES + ORT_STATIC_SOFTMAX_QDQ_PASSES))
    vit = _spec("examples/configs/tiny-vit.json", batch=8)  # no attention mask: the softmax alone
    tv, vit_pass = softmax_s(vit, "fp32")
    assert tv == pytest.approx(vit_pass)
    # a runtime that does not run the exported graph op by op keeps the plain one-pass softmax
    litert = next(r for r in host.runtimes if r.name == "litert").model_copy(deep=True)
    litert.efficiency = {"fp32": eff}
    assert softmax_s(bert, "fp32", litert)[0] == pytest.approx(one_pass)


def test_dynamic_int8_leaves_the_attention_matmuls_in_float_on_onnxruntime(host):
    from edge_sdk.planner.costmodel import block_costs

    spec = _spec("minilm", seq_len=128)
    unit = host.unit("cpu")
    ort = next(r for r in host.runtimes if r.name == "onnxruntime").model_copy(deep=True)
    same = Efficiency(compute=0.5, memory=0.7, per_op_overhead_us=5)
    ort.efficiency = {"fp32": same, "int8": same, "int8_dynamic": same}
    scores = next(l.name for l in spec.layers if l.kind == "attention_scores")
    qkv = next(l.name for l in spec.layers if l.kind == "attention_qkv")
    fp32 = block_costs(spec, host, unit, "fp32", runtime=ort)
    dyn = block_costs(spec, host, unit, "int8_dynamic", runtime=ort)
    assert dyn.layer_s[scores] == pytest.approx(fp32.layer_s[scores])  # a float MatMul, no quantize step
    assert dyn.layer_s[qkv] != pytest.approx(fp32.layer_s[qkv])  # linear layers are quantized


def test_openvino_int8_runs_attention_in_float_and_pays_its_per_call_cost_once(host):
    """NNCF's transformer preset quantizes the linear layers; the converted ScaledDotProductAttention stays float."""
    from edge_sdk.planner.costmodel import block_costs, predict

    spec = _spec("minilm", seq_len=128)
    unit = host.unit("cpu")
    ov = next(r for r in host.runtimes if r.name == "openvino").model_copy(deep=True)
    same = Efficiency(compute=0.5, memory=0.7, per_op_overhead_us=5)
    ov.efficiency = {"fp32": same, "int8_static": same}
    scores = next(l.name for l in spec.layers if l.kind == "attention_scores")
    qkv = next(l.name for l in spec.layers if l.kind == "attention_qkv")
    fp32 = block_costs(spec, host, unit, "fp32", runtime=ov)
    int8 = block_costs(spec, host, unit, "int8_static", runtime=ov)
    assert int8.layer_s[scores] == pytest.approx(fp32.layer_s[scores])
    assert int8.layer_s[qkv] < fp32.layer_s[qkv]
    # published results run other tools' IRs (attention as MatMuls their int8 quantizes): costed at int8 there
    theirs = block_costs(spec, host, unit, "int8_static", runtime=ov, edge_sdk_ir=False)
    assert theirs.layer_s[scores] < fp32.layer_s[scores] and theirs.layer_s[qkv] == pytest.approx(int8.layer_s[qkv])
    # the per-call cost is added once per inference, whatever the depth
    called = same.model_copy(update={"per_run_overhead_us": 150.0})
    with_call = ov.model_copy(deep=True)
    with_call.efficiency = {"int8_static": called}
    t0 = predict(spec, host, ov, unit, "int8_static", int8).latency_ms
    t1 = predict(spec, host, with_call, unit, "int8_static",
                 block_costs(spec, host, unit, "int8_static", runtime=with_call)).latency_ms
    assert t1 - t0 == pytest.approx(0.150, rel=1e-6)


def test_a_cold_weight_read_is_added_to_the_hot_gemm_table(host):
    from edge_sdk.planner.costmodel import bandwidth_gbps, block_costs

    spec = _spec("examples/configs/bert-base.json", seq_len=16)
    prof = host.model_copy(deep=True)
    rt = next(r for r in prof.runtimes if r.name == "onnxruntime")
    rt.gemm_ms["fp32"] = [GemmTiming(m=16, k=768, n=3072, ms=0.1)]
    up = next(l for l in spec.layers if l.kind == "ffn_up")
    t = block_costs(spec, prof, prof.unit("cpu"), "fp32", runtime=rt).layer_s[up.name]
    assert t == pytest.approx(1e-4 + up.params * 4.0 / (bandwidth_gbps(prof, prof.unit("cpu")) * 1e9))


def test_calibration_kernels_keep_the_median_of_their_round_medians():
    from edge_sdk.device.calibrate import _row

    row = _row({"name": "k"}, sorted([1.0, 1.1, 5.0, 5.2, 1.2, 1.3]), [1.05, 5.1, 1.25])
    assert row["median_ms"] == pytest.approx(1.25) and row["rounds"] == 3 and row["iterations"] == 6
    assert row["round_medians_ms"] == [1.05, 5.1, 1.25]


def test_a_version_1_calibration_is_refused_with_one_line(host, tmp_path):
    assert CALIBRATION_SCHEMA_VERSION == 2
    old = tmp_path / "local" / "20261101T000000.000Z.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"schema_version": 1, "kind": "calibration", "profile": "host", "target": "local",
                               "source": "microbenchmarks", "created_at": "2026-11-01T00:00:00+00:00"}))
    with pytest.raises(InputError, match="schema_version 1; this edge-sdk reads version 2"):
        load_calibration(old)
    found = find_calibration(host, directory=tmp_path, fingerprint=None)
    assert found.calibration is None and len(found.notes) == 1 and "schema_version 1" in found.notes[0]
    assert not math.isnan(0.0)
