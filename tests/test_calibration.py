"""`edge-sdk calibrate`: the fit recovers known efficiencies, calibrations are matched to the right device and never
used silently when they do not match, and a real calibration (here and over SSH) changes what `plan` predicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.calibration import calibrated, find_calibration, load_calibration, save_calibration
from edge_sdk.calibration.fit import fit, predict_ms
from edge_sdk.calibration.suite import kernel_plan
from edge_sdk.errors import InputError
from edge_sdk.profiles import load_registry
from edge_sdk.schemas.calibration import Calibration, DeviceFingerprint, FittedEfficiency, Microbenchmark
from edge_sdk.schemas.profile import Efficiency

REPO = Path(__file__).resolve().parents[1]
EDGE = [sys.executable, "-m", "edge_sdk"]


@pytest.fixture(scope="module")
def host():
    return load_registry(host_profile="static").resolve("host")[0]


def _synthetic(host, eff: dict[str, Efficiency], bandwidth: float, ov_us: float) -> list[Microbenchmark]:
    """Kernel timings made by the roofline itself at known efficiencies (a per-node cost of ov_us)."""
    from edge_sdk.planner.costmodel import compute_peak_tops

    unit = host.unit("cpu")
    out = []
    for k in kernel_plan(("fp32", "int8_dynamic")):
        if k["kind"] == "dispatch":
            continue
        nodes = 64 if k["kind"] == "overhead" else 2
        prec = k["precision"]
        e = eff[prec]
        m = Microbenchmark(name=k["name"], kind=k["kind"], runtime="onnxruntime", provider="CPUExecutionProvider",
                           precision=prec, shape=k["shape"], flops=k["flops"], bytes_moved=k["bytes_moved"],
                           nodes=nodes, median_ms=1.0, iterations=10, held_out=k["held_out"])
        peak = compute_peak_tops(unit, prec, False)[0]
        t = predict_ms(m, peak_tops=peak, bandwidth_gbps=bandwidth,
                       eff=Efficiency(compute=e.compute, memory=1.0 if k["kind"] == "bandwidth" else e.memory,
                                      per_op_overhead_us=ov_us))
        out.append(m.model_copy(update={"median_ms": t, "p10_ms": t}))
    return out


def test_fit_recovers_the_efficiencies_that_made_the_timings(host):
    truth = {"fp32": Efficiency(compute=0.42, memory=0.8, per_op_overhead_us=0.5),
             "int8_dynamic": Efficiency(compute=0.27, memory=0.8, per_op_overhead_us=0.5)}
    rt = next(r for r in host.runtimes if r.name == "onnxruntime")
    fits, bw, notes = fit(_synthetic(host, truth, 20.0, 0.5), host, rt)
    assert bw == pytest.approx(20.0, rel=0.01)
    got = {f.precision: f for f in fits}
    assert set(got) == {"fp32", "int8_dynamic"}
    for prec, e in truth.items():
        assert got[prec].efficiency.compute == pytest.approx(e.compute, rel=0.03), prec
        assert got[prec].efficiency.memory == pytest.approx(e.memory, rel=0.03), prec
        assert got[prec].efficiency.per_op_overhead_us == pytest.approx(0.5, rel=0.01)
        assert got[prec].held_out > 0 and got[prec].fit_error_max < 0.05  # held-out kernels predicted too


def test_a_later_runtime_is_fitted_against_the_bandwidth_the_first_one_measured(host):
    """One bandwidth is stored per device, so every runtime's memory efficiency must be relative to it (OpenVINO's
    own 64 MiB Add measures its Python call's copies, not the memory)."""
    truth = {"fp32": Efficiency(compute=0.42, memory=0.8, per_op_overhead_us=0.5),
             "int8_dynamic": Efficiency(compute=0.27, memory=0.8, per_op_overhead_us=0.5)}
    rt = next(r for r in host.runtimes if r.name == "onnxruntime")
    timings = _synthetic(host, truth, 20.0, 0.5)
    own = {f.precision: f for f in fit(timings, host, rt)[0]}
    fits, bw, notes = fit(timings, host, rt, None, 80.0)
    assert bw is None and any("device's bandwidth 80.0 GB/s; its own 64 MiB Add ran at 20.0 GB/s" in n for n in notes)
    for f in fits:
        assert "bandwidth 80.0 GB/s" in f.note
        # the same memory-bound times at 4x the bandwidth: a quarter of the efficiency
        assert f.efficiency.memory == pytest.approx(own[f.precision].efficiency.memory / 4, rel=0.05)


def _cal(profile="host", target="local", fp=None, version="1.32.0", created="2026-11-01T00:00:00+00:00",
         compute=0.9) -> Calibration:
    return Calibration(profile=profile, target=target, source="microbenchmarks", fingerprint=fp,
                       runtime_versions={"onnxruntime": version}, created_at=created,
                       fits=[FittedEfficiency(unit="cpu", runtime="onnxruntime", provider="CPUExecutionProvider",
                                              precision="int8_dynamic", points=3,
                                              efficiency=Efficiency(compute=compute, memory=2.0,
                                                                    per_op_overhead_us=0.3))])


def test_only_a_matching_calibration_is_used_and_every_other_one_is_named(host, tmp_path):
    here = DeviceFingerprint(arch="x86_64", cpu_model="Test CPU", cores=2, isa_features=["avx2"])
    there = DeviceFingerprint(arch="x86_64", cpu_model="Other CPU", cores=8, isa_features=["avx2"])
    good = save_calibration(_cal(fp=here), tmp_path)
    other = save_calibration(_cal(fp=there, created="2026-11-02T00:00:00+00:00"), tmp_path)
    old_rt = save_calibration(_cal(fp=here, version="1.19.0", created="2026-11-03T00:00:00+00:00"), tmp_path)
    broken = tmp_path / "local" / "zz-truncated.json"
    broken.write_text(good.read_text()[:200])
    older = tmp_path / "local" / "zz-older.json"
    older.write_text(json.dumps({**json.loads(good.read_text()), "schema_version": 0}))
    found = find_calibration(host, directory=tmp_path, fingerprint=here, runtime_versions={"onnxruntime": "1.32.1"})
    assert found.path == good
    text = "\n".join(found.notes)
    assert f"{other}: measured on another machine (Other CPU, 8 cores" in text
    assert f"{old_rt}: measured with onnxruntime 1.19.0, this device has 1.32.1" in text
    assert str(broken) in text and "not a JSON calibration" in text
    assert str(older) in text and "schema_version 0" in text
    applied, used, _ = calibrated(host, directory=tmp_path, fingerprint=here, runtime_versions={"onnxruntime": "1.32"})
    assert used.startswith(f"using calibration {good}")
    rt = next(r for r in applied.runtimes if r.name == "onnxruntime")
    assert rt.efficiency["int8_dynamic"].compute == 0.9
    assert calibrated(host, use=False, directory=tmp_path) == (host, None, [])
    with pytest.raises(InputError, match="zz-truncated.json"):
        load_calibration(broken)


def test_an_uncalibrated_host_plan_says_so_and_how_to_calibrate(tmp_path):
    import edge_sdk

    ps = edge_sdk.plan("minilm", device="host", runtime="onnxruntime", calibrations_dir=tmp_path)
    assert ps.calibration is None and any("edge-sdk calibrate --local" in n for n in ps.notes)
    plain = edge_sdk.plan("minilm", device="host", runtime="onnxruntime", calibration=False, calibrations_dir=tmp_path)
    assert not any("calibrate --local" in n for n in plain.notes)   # --no-calibration was asked for: no nagging
    rpi = edge_sdk.plan("minilm", device="raspberry-pi-5", calibrations_dir=tmp_path)
    assert not any("calibrate --local" in n for n in rpi.notes)     # --local calibrates this machine, not a Pi


def test_a_target_calibration_applies_to_its_profile_and_published_ones_rank_below_measured(tmp_path):
    reg = load_registry()
    rpi = reg.resolve("raspberry-pi-5")[0]
    version = next(r.version for r in rpi.runtimes if r.name == "onnxruntime") or "1.32.0"  # unpinned: any matches
    pub = _cal(profile=rpi.name, target="published", version=version, compute=0.3).model_copy(
        update={"source": "published", "created_at": "2026-11-05T00:00:00+00:00"})
    save_calibration(pub, tmp_path)
    assert find_calibration(rpi, directory=tmp_path).calibration.source == "published"
    measured = save_calibration(_cal(profile=rpi.name, target="my-pi", version=version), tmp_path)
    assert find_calibration(rpi, directory=tmp_path).path == measured  # older, but measured beats published
    assert find_calibration(reg.resolve("jetson-orin-nano")[0], directory=tmp_path).calibration is None


def test_plan_says_which_calibration_it_used_and_no_calibration_ignores_it(tmp_path):
    import edge_sdk
    from edge_sdk.calibration import local_fingerprint

    cal = _cal(fp=local_fingerprint(), version=__import__("onnxruntime").__version__, compute=0.05)
    path = save_calibration(cal, tmp_path)
    ps = edge_sdk.plan("minilm", device="host", runtime="onnxruntime", calibrations_dir=tmp_path)
    plain = edge_sdk.plan("minilm", device="host", runtime="onnxruntime", calibration=False,
                          calibrations_dir=tmp_path)
    assert ps.calibration and str(path) in ps.calibration and plain.calibration is None
    from edge_sdk.planner import predict_plan

    fast = next(p for p in plain.runnable() if p.precision == "int8_dynamic")
    applied = calibrated(load_registry().resolve("host")[0], directory=tmp_path).profile
    slow = predict_plan(fast, applied)
    assert slow.latency_ms > 3 * fast.predicted.latency_ms  # a 5 % compute efficiency is much slower
    assert ps.best.summary() != fast.summary() or ps.best.predicted.latency_ms == pytest.approx(slow.latency_ms)
    r = subprocess.run(EDGE + ["plan", "--device", "host", "--calibrations", str(tmp_path)], capture_output=True,
                       text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0 and f"using calibration {path}" in r.stderr


@pytest.mark.parametrize("args", [[], ["--local", "--from-published", "host"]])
def test_calibrate_needs_exactly_one_mode(args):
    r = subprocess.run(EDGE + ["calibrate", *args], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and "exactly one of --local" in r.stderr and "Traceback" not in r.stderr


def test_quick_is_refused_where_nothing_is_timed():
    r = subprocess.run(EDGE + ["calibrate", "--from-published", "jetson-agx-orin", "--quick"], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and "--quick" in r.stderr and "Traceback" not in r.stderr


def test_quick_asks_the_device_for_one_short_round_and_the_default_for_its_three():
    from edge_sdk.calibration.run import _args

    rt = load_registry().resolve("host")[0].runtimes[0]
    full, quick = _args("S", rt, None, 900.0), _args("S", rt, None, 900.0, quick=True)
    assert "--rounds" not in full and "--min-time" not in full  # the device command's defaults: 3 rounds of 0.1 s
    assert quick[:len(full)] == full and quick[len(full):] == ["--rounds", "1", "--min-time", "0.02"]


def test_from_published_on_a_profile_without_results_is_one_clear_line():
    r = subprocess.run(EDGE + ["calibrate", "--from-published", "raspberry-pi-5"], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 2 and "reference_results" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_calibrate_local_measures_fits_and_plan_uses_it(tmp_path):
    # --quick: the same suite, runtimes, fit and files in under half the time (test_quick_asks_... checks that the
    # default asks the device for its 3 rounds; test_calibration_layers, that rounds are pooled)
    r = subprocess.run(EDGE + ["calibrate", "--local", "--quick", "--calibrations", str(tmp_path), "--json"],
                       capture_output=True, text=True, timeout=900, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    cal = Calibration.model_validate_json(r.stdout)
    from edge_sdk.calibration import local_fingerprint

    assert cal.fingerprint == local_fingerprint() and cal.target == "local" and cal.profile == "host"
    ort_fits = {f.precision: f for f in cal.fits if f.runtime == "onnxruntime"}
    assert set(ort_fits) == {"fp32", "int8_dynamic", "int8_static", "int4_weight_only"}
    assert [p for p, f in ort_fits.items() if f.table_only] == ["int4_weight_only"]  # a table, no fitted efficiency
    assert cal.memory_bandwidth_gbps and cal.memory_bandwidth_gbps > 0.5
    assert all(f.held_out > 0 and f.fit_error_median is not None for f in cal.fits)
    kinds = {m.kind for m in cal.measurements}
    assert {"gemm", "bandwidth", "overhead", "dispatch", "softmax", "layernorm", "gelu", "attention"} <= kinds
    assert any("litert" in n and "not calibrated" in n for n in cal.notes)
    assert {m.rounds for m in cal.measurements} == {1} and any("quick calibration" in n for n in cal.notes)
    # OpenVINO: fitted to layer stacks (one layer, six, the toy six deep), not to isolated GEMMs; its per-call cost
    ov = [m for m in cal.measurements if m.runtime == "openvino"]
    assert ov and not [m for m in ov if m.kind == "gemm"]
    assert {m.shape.get("layers") for m in ov if m.kind == "layer"} == {1, 6}
    ov_fits = [f for f in cal.fits if f.runtime == "openvino"]
    assert {f.precision for f in ov_fits} == {"fp32", "int8_static"}
    assert all(f.efficiency.per_run_overhead_us > 0 and "per inference call" in f.note for f in ov_fits)
    saved = list((tmp_path / "local").glob("*.json"))
    assert len(saved) == 1 and load_calibration(saved[0]) == cal
    p = subprocess.run(EDGE + ["plan", "--device", "host", "--calibrations", str(tmp_path), "--json"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0 and json.loads(p.stdout)["calibration"].startswith(f"using calibration {saved[0]}")


@pytest.mark.slow
def test_ctrl_c_stops_a_calibration_and_leaves_no_process(tmp_path):
    # output to files, not undrained pipes: a full pipe would block the process in write(), as no terminal does
    out, err = (tmp_path / "logs" / "stdout"), (tmp_path / "logs" / "stderr")
    out.parent.mkdir()
    with out.open("w") as fo, err.open("w") as fe:
        # Ctrl-C as a terminal delivers it: a test run started in the background (`cmd &` in a script) ignores
        # SIGINT, and its children would inherit that
        proc = subprocess.Popen(EDGE + ["calibrate", "--local", "--calibrations", str(tmp_path / "cals")], cwd=REPO,
                                stdout=fo, stderr=fe, text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _device_calibrations(proc.pid):  # wait until the device side runs
        time.sleep(0.2)
    device = _device_calibrations(proc.pid)
    assert device, "the device-side calibration never started"
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"calibrate did not stop within 60 s of Ctrl-C; its stderr ends: "
                             f"{err.read_text()[-1500:]!r}") from None
    assert proc.returncode != 0
    time.sleep(1.0)
    assert not [pid for pid in device if os.path.exists(f"/proc/{pid}")], "a calibration process outlived Ctrl-C"
    assert not list(tmp_path.rglob("*.json"))  # nothing half-written


def _device_calibrations(host_pid: int) -> list[int]:
    """The device-side calibration that this host process started (its child): other calibrations running on the
    same machine, e.g. another test run, must not count."""
    out = subprocess.run(["pgrep", "-P", str(host_pid), "-f", "edge_device calibrate"], capture_output=True,
                         text=True)
    return [int(x) for x in out.stdout.split()]


@pytest.mark.ssh
@pytest.mark.slow
def test_calibrate_over_ssh_uploads_the_suite_once_and_fits(tmp_path_factory):
    from conftest import root_loopback_sshd, write_loopback_target

    work = tmp_path_factory.mktemp("calibrate-remote")
    with root_loopback_sshd(work) as server:
        target = write_loopback_target(server, work)
        cals = work / "cals"
        r = subprocess.run(EDGE + ["calibrate", "--target", str(target), "--quick", "--calibrations", str(cals),
                                   "--json"],
                           capture_output=True, text=True, timeout=900, cwd=REPO)
        assert r.returncode == 0, r.stderr[-2000:]
        cal = Calibration.model_validate_json(r.stdout)
        assert cal.target == "loop" and cal.profile == "host"
        by_rt = {(f.runtime, f.precision) for f in cal.fits}
        assert {("onnxruntime", p) for p in ("fp32", "int8_dynamic", "int8_static")} <= by_rt
        # OpenVINO is installed beside the runner here: its fp32/int8 are fitted to its own IR (layer stacks)
        assert {("openvino", "fp32"), ("openvino", "int8_static")} <= by_rt
        assert any(m.runtime == "openvino" and m.kind == "layer" for m in cal.measurements)
        suites = list((work / "device" / ".edge_calibration").iterdir())
        assert len(suites) == 1 and (suites[0] / "suite.json").is_file()
        assert list((cals / "loop").glob("*.json"))


def test_gemm_table_interpolates_per_flop_time_in_log_tokens_and_takes_the_nearest_widths():
    from edge_sdk.planner.gemm_table import measured_gemm_s
    from edge_sdk.schemas.profile import GemmTiming

    flop = lambda m, k, n: 2.0 * m * k * n  # noqa: E731
    table = [GemmTiming(m=16, k=384, n=384, ms=flop(16, 384, 384) * 4e-12 * 1e3),     # 4 ps/FLOP at 16 tokens
             GemmTiming(m=256, k=384, n=384, ms=flop(256, 384, 384) * 1e-12 * 1e3),   # 1 ps/FLOP at 256 tokens
             GemmTiming(m=16, k=768, n=3072, ms=flop(16, 768, 3072) * 9e-12 * 1e3)]
    assert measured_gemm_s(table, 16, 384, 384) == pytest.approx(flop(16, 384, 384) * 4e-12)
    assert measured_gemm_s(table, 64, 384, 384) == pytest.approx(flop(64, 384, 384) * 2e-12)  # halfway in log m
    assert measured_gemm_s(table, 4096, 384, 384) == pytest.approx(flop(4096, 384, 384) * 1e-12)  # clamped
    assert measured_gemm_s(table, 16, 1024, 4096) == pytest.approx(flop(16, 1024, 4096) * 9e-12)  # nearest widths
    assert measured_gemm_s([], 16, 384, 384) is None


def test_the_cost_model_reads_linear_layers_off_a_calibrated_table(host):
    import edge_sdk
    from edge_sdk.planner.costmodel import block_costs
    from edge_sdk.schemas.profile import GemmTiming

    spec = edge_sdk.inspect("minilm", seq_len=128)
    prof = host.model_copy(deep=True)
    rt = next(r for r in prof.runtimes if r.name == "onnxruntime")
    plain = block_costs(spec, prof, prof.unit("cpu"), "fp32", runtime=rt)
    rt.gemm_ms["fp32"] = [GemmTiming(m=128, k=k, n=n, ms=1.0) for k, n in ((384, 384), (384, 1536), (1536, 384))]
    table = block_costs(spec, prof, prof.unit("cpu"), "fp32", runtime=rt)
    q = "encoder.layer.0.attention.self.query"
    # the table's (hot-cache) time, plus reading this layer's own weights from DRAM at the raw bandwidth, plus the
    # reshape/transpose of Q to heads that onnxruntime runs after the projection (at the fitted memory efficiency)
    layer = next(l for l in spec.layers if l.name == q)
    from edge_sdk.planner.costmodel import bandwidth_gbps, efficiency
    bw = bandwidth_gbps(prof, prof.unit("cpu")) * 1e9
    mem = efficiency(prof, prof.unit("cpu"), rt, "fp32").memory
    want = 1e-3 + layer.params * 4.0 / bw + 2 * layer.activation_bytes / (bw * mem)
    assert table.layer_s[q] == pytest.approx(want) and plain.layer_s[q] != pytest.approx(want)
    ctx = next(l.name for l in spec.layers if l.kind == "attention_scores")  # not a linear layer: still roofline
    assert table.layer_s[ctx] == pytest.approx(plain.layer_s[ctx])


def test_int4_kernels_are_the_builders_matmulnbits_timed_by_onnxruntime_alone(tmp_path):
    import onnx

    from edge_sdk.calibration.suite import NBITS_KERNEL, make_suite

    plan = kernel_plan(("fp32", "int4_weight_only"), openvino=True)
    int4 = [k for k in plan if k["precision"] == "int4_weight_only"]
    assert int4 and {k["kind"] for k in int4} == {"gemm"}  # no whole-encoder kernels: encoders are not built int4
    assert all(k["runtimes"] == ["onnxruntime"] for k in int4)  # MatMulNBits is an onnxruntime contrib op
    assert min(min(k["shape"]["k"], k["shape"]["n"]) for k in int4) >= 128 and any(k["held_out"] for k in int4)
    suite = make_suite(tmp_path, precisions=("int4_weight_only",))
    kernels = json.loads((suite / "suite.json").read_text())["kernels"]
    k = next(k for k in kernels if k["precision"] == "int4_weight_only")
    g = onnx.load(str(suite / k["file"])).graph
    node = next(n for n in g.node if n.op_type == "MatMulNBits")
    attrs = {a.name: a.i for a in node.attribute}
    want = NBITS_KERNEL["int4_weight_only"]
    assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (want["bits"], want["block_size"],
                                                                              want["accuracy_level"])
    assert (attrs["K"], attrs["N"]) == (k["shape"]["k"], k["shape"]["n"])


def test_a_calibrated_int4_table_prices_a_decoders_prompt_not_its_generated_tokens(host):
    import edge_sdk
    from edge_sdk.planner.costmodel import block_costs
    from edge_sdk.schemas.profile import GemmTiming

    spec = edge_sdk.inspect(str(REPO / "examples" / "configs" / "tiny-llama.json"), seq_len=32)
    prof = host.model_copy(deep=True)
    rt = next(r for r in prof.runtimes if r.name == "onnxruntime")
    linear = next(l for l in spec.layers if l.gemm and l.kind != "embedding" and l.block is not None)
    before = block_costs(spec, prof, prof.unit("cpu"), "int4_weight_only", runtime=rt)
    slow = [GemmTiming(m=m, k=k, n=n, ms=50.0) for m in (16, 128) for k, n in ((128, 128), (128, 512), (512, 128))]
    rt.gemm_ms["int4_weight_only"] = slow
    prefill = block_costs(spec, prof, prof.unit("cpu"), "int4_weight_only", runtime=rt)
    assert prefill.layer_s[linear.name] > 100 * before.layer_s[linear.name]  # read off the (slow) table
    # the builder's int8 is MatMulNBits too: the same table, not the encoders' MatMulInteger one
    rt.gemm_ms["int8_dynamic"] = [t.model_copy(update={"ms": 1e-3}) for t in slow]
    int8 = block_costs(spec, prof, prof.unit("cpu"), "int8_dynamic", runtime=rt)
    assert int8.layer_s[linear.name] == pytest.approx(prefill.layer_s[linear.name], rel=0.01)
    decode = block_costs(spec, prof, prof.unit("cpu"), "int4_weight_only", runtime=rt, decode=True)
    plain = block_costs(spec, host, host.unit("cpu"), "int4_weight_only", decode=True,
                        runtime=next(r for r in host.runtimes if r.name == "onnxruntime"))
    assert decode.layer_s[linear.name] < 1e-3 and decode.layer_s[linear.name] == pytest.approx(
        plain.layer_s[linear.name])  # one token: a weight-bound GEMV, costed by bandwidth


def test_int4_timings_become_a_table_and_leave_the_profiles_efficiency_alone(host):
    from edge_sdk.planner.costmodel import efficiency

    rt = next(r for r in host.runtimes if r.name == "onnxruntime")
    measured = []
    for k in kernel_plan(("fp32", "int4_weight_only")):
        if k["kind"] == "dispatch":
            continue
        ms = (k["flops"] * 2e-12 + k["bytes_moved"] * 5e-11) * 1e3 + 0.01  # any smooth timing
        measured.append(Microbenchmark(name=k["name"], kind=k["kind"], runtime="onnxruntime",
                                       provider="CPUExecutionProvider", precision=k["precision"], shape=k["shape"],
                                       flops=k["flops"], bytes_moved=k["bytes_moved"],
                                       nodes=64 if k["kind"] == "overhead" else 2, median_ms=ms, p10_ms=ms,
                                       iterations=10, held_out=k["held_out"]))
    fits, _, _ = fit(measured, host, rt)
    int4 = next(f for f in fits if f.precision == "int4_weight_only")
    assert int4.efficiency == efficiency(host, host.unit("cpu"), rt, "int4_weight_only")
    assert int4.table_only and int4.held_out > 0 and int4.fit_error_max is not None and "table only" in int4.note
    fp32 = next(f for f in fits if f.precision == "fp32")
    assert fp32.efficiency != int4.efficiency  # fp32 is fitted
    cal = Calibration(profile="host", target="local", source="microbenchmarks", fits=fits, measurements=measured,
                      created_at="2026-01-01T00:00:00+00:00")
    from edge_sdk.calibration import apply_calibration

    applied = next(r for r in apply_calibration(host, cal).runtimes if r.name == "onnxruntime")
    assert len(applied.gemm_ms["int4_weight_only"]) == sum(m.precision == "int4_weight_only" for m in measured)
