"""bench --profile-ops and reproducible benchmarks: real onnxruntime profiles mapped to ModelSpec layers, the trace and
TensorBoard export, the report's per-layer section, --repeat rounds, the p50 confidence interval and the
machine-state warnings (no mocks: a real tiny BERT bundle, a real OpenSSH server for the remote fetch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.benchmark import BenchResult, bench_local, load_result, save_result
from edge_sdk.benchmark.op_layers import OTHER, map_nodes
from edge_sdk.device.machine import cpu_frequencies, machine_state, machine_warnings, thermal_zones
from edge_sdk.device.stats import median_ci, median_ci_ranks, spread
from test_bench_inputs import VOCAB, make_bundle, make_plan, sample_arrays, tiny_bert_onnx
from test_report_results import bench_result


def tiny_spec(seq_len: int = 32):
    """The ModelSpec of the BERT inside tiny_bert_onnx (same config; exported there wrapped as `bert`)."""
    from transformers import BertConfig, BertModel

    from edge_sdk.modelspec import inspect_module

    cfg = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                     vocab_size=VOCAB, max_position_embeddings=128)
    return inspect_module(BertModel(cfg).eval(), batch=1, seq_len=seq_len)


def profiled_bundle(out: Path, cache: Path) -> Path:
    """The tiny ONNX BERT bundle, with the plan carrying its ModelSpec as `edge-sdk build` writes it."""
    from edge_sdk.bundle import write_bundle
    from edge_sdk.benchmark.inputs import save_sample_inputs
    from edge_sdk.schemas.bundle import Artifact, TensorSig

    model = tiny_bert_onnx(cache)
    npz = save_sample_inputs(cache / "samples-profile.npz", sample_arrays())
    ins = [TensorSig(name=n, dtype="int64", shape=["batch", "seq"]) for n in ("input_ids", "attention_mask")]
    art = Artifact(path="model/model.onnx", format="onnx", runtime="onnxruntime", provider="CPUExecutionProvider",
                   precision="fp32", inputs=ins,
                   outputs=[TensorSig(name="last_hidden_state", dtype="float32", shape=["batch", "seq", 64])])
    plan = make_plan().model_copy(update={"model_spec": tiny_spec()})
    write_bundle(out, {"model/model.onnx": model, "inputs/samples.npz": npz},
                 {"model_id": "tiny-bert", "model_name": "tiny-bert", "device": "host", "plan": plan,
                  "artifacts": [art], "sample_inputs": "inputs/samples.npz", "versions": {"test": "1"}})
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-profile")


@pytest.fixture(scope="module")
def bundle(work):
    return profiled_bundle(work / "bundle", work)


@pytest.fixture(scope="module")
def profiled(bundle) -> BenchResult:
    return bench_local(bundle, iterations=15, warmup=2, repeat=3, profile_ops=True, profile_iterations=7, threads=1,
                       show_progress=False)  # 7 profiled runs: a block of 5 and one of 2 (device/bench.py)


# ----------------------------------------------------------------------------------------------- statistics


def test_median_ci_ranks_match_the_binomial_table():
    assert median_ci_ranks(100) == (40, 61)  # the textbook ranks for n = 100 at 95 %
    assert median_ci_ranks(20) == (6, 15)
    assert median_ci_ranks(6) == (1, 6)      # 1 - 2/64 = 96.9 % coverage
    assert median_ci_ranks(5) is None         # 1 - 2/32 = 93.75 % < 95 %: no interval
    assert median_ci(list(range(100, 0, -1))) == [40, 61]  # order statistics of the sorted sample


def test_round_spread():
    assert spread([10.0, 11.0, 12.0]) == {"min": 10.0, "median": 11.0, "max": 12.0, "relative": pytest.approx(2 / 11)}


# ----------------------------------------------------------------------------------------------- machine state


def test_load_and_governor_warnings_on_injected_values():
    assert machine_warnings({"cpu_count": 2, "load_avg_before": [0.4, 0.1, 0.1], "governors": None}) == []
    loaded = machine_warnings({"cpu_count": 2, "load_avg_before": [1.5, 1.0, 1.0], "governors": None})
    assert len(loaded) == 1 and "1-min load average 1.50 on 2 cores" in loaded[0]
    gov = machine_warnings({"cpu_count": 8, "load_avg_before": [0.0, 0, 0],
                            "governors": {"cpu0": "powersave", "cpu1": "performance"}})
    assert len(gov) == 1 and "performance/powersave" in gov[0]
    assert machine_warnings({"cpu_count": 8, "load_avg_before": [0.0, 0, 0],
                             "governors": {"cpu0": "performance"}}) == []


def test_sysfs_is_read_and_missing_files_give_null(tmp_path):
    cpu = tmp_path / "cpu"
    for i, (gov, khz) in enumerate((("performance", 2400000), ("schedutil", 1800000))):
        d = cpu / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(gov + "\n")
        (d / "scaling_cur_freq").write_text(f"{khz}\n")
    th = tmp_path / "thermal" / "thermal_zone0"
    th.mkdir(parents=True)
    (th / "type").write_text("cpu-thermal\n")
    (th / "temp").write_text("48250\n")
    f = cpu_frequencies(str(cpu))
    assert f["governors"] == {"cpu0": "performance", "cpu1": "schedutil"}
    assert f["cur_mhz"] == {"cpu0": 2400.0, "cpu1": 1800.0} and f["max_mhz"] == {}
    assert thermal_zones(str(tmp_path / "thermal")) == [{"zone": "thermal_zone0", "type": "cpu-thermal",
                                                         "temp_c": 48.2}]
    state = machine_state(str(cpu), str(tmp_path / "thermal"))
    assert any("schedutil" in w for w in state["warnings"])
    empty = machine_state(str(tmp_path / "none"), str(tmp_path / "none"))
    assert empty["governors"] is None and empty["cur_mhz"] is None and empty["thermal_before"] is None
    assert any("no cpufreq" in n for n in empty["notes"]) and any("no thermal" in n for n in empty["notes"])


def test_old_results_without_the_new_fields_still_load(tmp_path):
    p = tmp_path / "old.json"
    p.write_text(json.dumps(bench_result()))
    r = load_result(p)
    assert r.op_profile is None and r.machine is None and r.repeat == 1 and r.warnings == []
    assert r.batches[0].p50_ci95_ms is None and r.batches[0].rounds is None


def test_trace_summary_counts_only_the_runs_it_is_told(tmp_path):
    from edge_sdk.device.opprofile import summarize_ort_trace

    def run(ts, dur, node_us):  # one model_run with one kernel inside it
        return [{"cat": "Session", "name": "model_run", "ts": ts, "dur": dur},
                {"cat": "Node", "name": "n_kernel_time", "ts": ts + 1, "dur": node_us, "args": {"op_name": "MatMul"}}]

    # warm-up (0), then blocks: a discarded first run (1, 4) and two counted runs (2, 3 and 5, 6)
    durations = [900, 500, 100, 100, 500, 100, 100]
    events = [e for i, d in enumerate(durations) for e in run(i * 1000, d, d - 10)]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(events))
    told = summarize_ort_trace(str(path), 4, counted=[2, 3, 5, 6])
    assert told["profiled_runs"] == 4 and told["run_us_mean"] == 100 and told["nodes"][0]["per_run_us"] == 90
    last = summarize_ort_trace(str(path), 4)  # without the indices: the last 4, a discarded run among them
    assert last["run_us_mean"] == 200
    # indices the trace does not hold (a runtime that dropped events) fall back to the last runs
    assert summarize_ort_trace(str(path), 4, counted=[2, 3, 5, 9])["run_us_mean"] == 200


# ----------------------------------------------------------------------------------------------- mapping

def test_openvino_counters_give_each_runs_own_time_without_the_truncation_bias():
    """OpenVINO's per-node counter after run k is floor(T_k / k), T_k the sum of the runs' durations each cast down to
    whole µs. Simulated nodes (a slow first run, then a few µs to 40 µs with jitter) over the bench's profiled pass
    (warm-up, then blocks of 5 whose first run is not counted): run_times gives the counted runs' mean within
    0.15 µs per node on average and never a negative run; differencing the averages as they stand under-counts."""
    import random
    import statistics

    from edge_sdk.device.engines.openvino import run_times

    rng = random.Random(3)
    warmup, blocks = 10, 4
    counted = [warmup + 5 * b + i for b in range(blocks) for i in range(1, 5)]  # 0-based run indices
    ours, plain = [], []
    for _ in range(600):
        base = rng.uniform(1.5, 40.0)
        true = [base * rng.uniform(2, 6)] + [max(0.0, rng.gauss(base, rng.uniform(0.3, 0.1 * base + 0.5)))
                                             for _ in range(warmup + 5 * blocks - 1)]
        total, averages = 0, []
        for k, d in enumerate(true, 1):
            total += int(d)
            averages.append(total // k)
        est = run_times(averages)
        assert len(est) == len(true) and min(est) >= 0
        diff = [k * a - (k - 1) * (averages[k - 2] if k > 1 else 0) for k, a in enumerate(averages, 1)]
        mean_true = statistics.mean(true[i] for i in counted)
        ours.append(statistics.mean(est[i] for i in counted) - mean_true)
        plain.append(sum(diff[i] for i in counted if diff[i] > 0) / len(counted) - mean_true)
    assert abs(statistics.mean(ours)) < 0.15, statistics.mean(ours)
    assert statistics.mean(plain) < -0.3, statistics.mean(plain)  # the bias run_times removes



def test_minilm_and_tiny_bert_node_names_map_to_their_layers():
    spec = tiny_spec()
    names = {layer.name for layer in spec.layers}
    nodes = [  # as onnxruntime reports them, wrapper prefixes, fusions and quantized variants included
        ("/model/encoder/layer.0/attention/self/query/MatMul_quant", "MatMulIntegerToFloat", 0),
        ("/bert/encoder/layer.1/attention/self/key/MatMul", "MatMul", 1),
        ("/0/auto_model/encoder/layer.0/attention/self/value/Add", "Add", 2),
        ("/model/encoder/layer.0/attention/self/MatMul/MatMulScaleFusion/", "FusedMatMul", 3),
        ("/model/encoder/layer.0/attention/self/Softmax", "Softmax", 4),
        ("/model/encoder/layer.0/attention/self/MatMul_1", "MatMul", 5),
        ("/model/encoder/layer.0/attention/output/dense/MatMul_quant", "DynamicQuantizeMatMul", 6),
        ("/model/encoder/layer.0/attention/output/Add", "Add", 7),
        ("/model/encoder/layer.0/intermediate/dense/MatMul", "MatMul", 8),
        ("Gelu", "Gelu", 9),
        ("/model/encoder/layer.0/output/dense/MatMul_quant", "DynamicQuantizeMatMul", 10),
        ("SkipLayerNormalization_token_3", "SkipLayerNormalization", 11),
        ("/model/embeddings/word_embeddings/Gather", "Gather", 12),
        ("/model/Shape_2", "Shape", 13),
        ("/ReduceSum", "ReduceSum", 14),
    ]
    got = map_nodes([{"node": n, "op_type": op, "order": o} for n, op, o in nodes], spec)
    assert got == [
        "encoder.layer.0.attention.self.query", "encoder.layer.1.attention.self.key",
        "encoder.layer.0.attention.self.value", "encoder.layer.0.attention.self.scores",
        "encoder.layer.0.attention.self.softmax", "encoder.layer.0.attention.self.context",
        "encoder.layer.0.attention.output.dense", "encoder.layer.0.attention.output.LayerNorm",
        "encoder.layer.0.intermediate.dense", "encoder.layer.0.intermediate.act", "encoder.layer.0.output.dense",
        "encoder.layer.0.output.LayerNorm", "embeddings.word_embeddings", OTHER, OTHER]
    assert set(got) <= names | {OTHER}


def test_openvino_generated_transposes_go_to_the_projection_before_them_within_one_block():
    spec = tiny_spec()
    ov = "__module.model.encoder.layer.{}.{}/aten::linear/MatMul"
    nodes = [  # as OpenVINO's CPU plugin reports them, in execution order
        (ov.format(0, "attention.self.query"), "FullyConnected"),
        ("Transpose_77841", "Transpose"),          # Q to heads: generated name, inside layer 0
        ("Convert_78792", "Convert"),              # generated, but not a layout op: stays (other)
        (ov.format(0, "attention.self.value"), "FullyConnected"),
        (ov.format(0, "output.dense"), "FullyConnected"),
        ("Transpose_77873", "Transpose"),          # between two blocks: nobody's
        (ov.format(1, "attention.self.key"), "FullyConnected"),
        ("Transpose_77905", "Transpose"),
        (ov.format(1, "attention.self.value"), "FullyConnected"),
        ("Transpose_9", "Transpose"),              # after the last mapped node: (other)
    ]
    got = map_nodes([{"node": n, "op_type": op, "order": o} for o, (n, op) in enumerate(nodes)], spec)
    assert got == ["encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.query", OTHER,
                   "encoder.layer.0.attention.self.value", "encoder.layer.0.output.dense", OTHER,
                   "encoder.layer.1.attention.self.key", "encoder.layer.1.attention.self.key",
                   "encoder.layer.1.attention.self.value", OTHER]


# ----------------------------------------------------------------------------------------------- a real profile


def test_profiled_local_bench_maps_every_node(profiled):
    op = profiled.op_profile
    assert op is not None and op.available and op.runtime == "onnxruntime"
    assert op.iterations == 7 and op.inputs == "padded" and op.batch == 1
    assert op.nodes and abs(sum(n.share for n in op.nodes) - 1) < 1e-3
    # the kernels are most of a run, never more than all of it
    assert 0.2 < op.node_sum_ms / op.run_ms <= 1.01, (op.node_sum_ms, op.run_ms)
    names = {layer.name for layer in tiny_spec().layers}
    assert all(n.layer in names or n.layer == OTHER for n in op.nodes)
    by_node = {n.node: n.layer for n in op.nodes}
    q = next(k for k in by_node if k.endswith("attention/self/query/MatMul"))
    assert by_node[q].endswith("layer.0.attention.self.query") or by_node[q].endswith("layer.1.attention.self.query")
    softmax = [k for k in by_node if k.endswith("/Softmax")]
    assert softmax and all(by_node[k].endswith("attention.self.softmax") for k in softmax)
    mapped = [n for n in op.nodes if n.layer != OTHER]
    assert len(mapped) > len(op.nodes) / 2
    # per-layer rows: every ModelSpec layer plus (other), predicted from the cost model for the host profile
    assert [x.layer for x in op.layers][:-1] == [layer.name for layer in tiny_spec().layers]
    assert op.layers[-1].layer == OTHER
    assert sum(x.measured_ms for x in op.layers) == pytest.approx(op.node_sum_ms, rel=1e-3)
    assert all(x.predicted_ms is not None and x.predicted_ms > 0 for x in op.layers[:-1])
    assert "profile host" in op.predicted_basis
    # end-to-end: the clean session's runs interleaved with the profiled ones, not the timed rounds' p50
    assert op.end_to_end_source == "interleaved" and op.end_to_end_ms > 0
    assert op.timed_p50_ms == profiled.batches[0].latency_ms.p50
    assert op.layer_sum_over_end_to_end == pytest.approx(op.layer_sum_ms / op.end_to_end_ms, rel=1e-3)


def test_repeat_gives_independent_rounds_and_a_ci(profiled):
    b = profiled.batches[0]
    assert profiled.repeat == 3 and b.rounds is not None and len(b.rounds.p50s_ms) == 3
    assert b.iterations == 45 and len(b.samples_ms) == 45  # 3 rounds x 15
    assert b.rounds.min_ms <= b.rounds.median_ms <= b.rounds.max_ms
    lo, hi = b.p50_ci95_ms
    assert lo <= b.latency_ms.p50 <= hi and "order statistics" in b.p50_ci_method
    m = profiled.machine
    assert m is not None and m.cpu_count and m.load_avg_before is not None and len(m.load_avg_before) == 3
    assert m.governors is not None or any("cpufreq" in n for n in m.notes)


def test_saved_result_has_a_chrome_trace_and_tensorboard_scalars(profiled, tmp_path):
    path = save_result(profiled, tmp_path)
    back = load_result(path)
    trace = path.with_name(back.op_profile.trace_file)
    assert trace.name.endswith(".trace.json") and trace.is_file()
    events = json.loads(trace.read_text())
    assert isinstance(events, list) and any(e.get("cat") == "Node" and e.get("ph") == "X" for e in events)
    assert all({"name", "ts", "ph"} <= set(e) for e in events)
    tb = path.with_name(path.name[:-len(".json")] + ".tb")
    files = list(tb.glob("events.out.tfevents.*"))
    assert files
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "layer_ms/measured" in tags and "layer_ms/predicted" in tags
    assert len(acc.Scalars("layer_ms/measured")) == len(back.op_profile.layers) - 1


def test_report_shows_per_layer_pm_and_top_ops(profiled, tmp_path):
    from edge_sdk.reporting.html import _layer_profile as html_layers
    from edge_sdk.reporting.markdown import _layer_profile as md_layers
    from edge_sdk.reporting.measured import collect_results

    save_result(profiled, tmp_path)
    matched, ignored = collect_results(tmp_path, model="tiny-bert", model_name="tiny-bert", devices={"host"})
    assert not ignored, ignored  # the .trace.json beside the result is not mistaken for a result
    lp = matched[0].measurement.layer_profile
    assert lp is not None and lp.available and len(lp.top_ops) == min(10, len(profiled.op_profile.nodes))
    assert lp.trace_file.endswith(".trace.json") and lp.layer_sum_over_end_to_end is not None
    md = "\n".join(md_layers(lp, "local/x.json"))
    assert "| layer | kind | predicted (P) | measured (M) | P/M |" in md
    assert "encoder.layer.0.attention.self.query" in md and "layer sum / end-to-end" in md
    assert f"{lp.layer_sum_over_end_to_end:.2f}" in md
    html = html_layers(lp, "local/x.json")
    assert "Per layer" in html and "top op" in html and "encoder.layer.1.output.dense" in html


def test_litert_says_plainly_that_it_has_no_op_profiler(work):
    r = bench_local(make_bundle(work / "tfl", fmt="tflite", cache_dir=work), iterations=3, warmup=1,
                    profile_ops=True, show_progress=False)
    assert r.op_profile is not None and not r.op_profile.available
    assert "no per-op profiler" in r.op_profile.unavailable_reason and not r.op_profile.nodes
    assert r.batches[0].iterations == 3  # the timed part is unaffected


# ----------------------------------------------------------------------------------------------- over SSH


@pytest.fixture(scope="module")
def sshd(work):
    from conftest import root_loopback_sshd

    with root_loopback_sshd(work) as server:
        yield server


def test_remote_profiled_bench_fetches_its_trace(sshd, work, bundle, tmp_path):
    from edge_sdk.benchmark import bench_remote
    from conftest import write_loopback_target
    from edge_sdk.remote import deploy, load_target_file

    target = load_target_file(write_loopback_target(sshd, work))
    deploy(bundle, target)
    r = bench_remote(target, iterations=5, warmup=1, profile_ops=True, profile_iterations=3, show_progress=False)
    op = r.op_profile
    assert op is not None and op.available and op.iterations == 3
    assert any(n.layer.endswith("attention.self.query") for n in op.nodes)  # the manifest came back over SFTP
    assert r._trace is not None and isinstance(json.loads(r._trace), list)
    assert not Path(op.trace_file).parent.exists()  # the device's temp trace directory was removed
    saved = save_result(r, tmp_path)
    assert saved.with_name(load_result(saved).op_profile.trace_file).is_file()
