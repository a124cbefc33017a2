"""Fitting to published results: reference results validate, reserved results never feed the fit, leave-one-out is
a fit without the point, and TensorRT's kernel fusion lowers its per-op overhead."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from edge_sdk.calibration.published import calibrate_from_published
from edge_sdk.modelspec.inspect import inspect_model
from edge_sdk.planner import costmodel as cm
from edge_sdk.profiles.loader import load_profile_file, shipped_profiles_dir
from edge_sdk.schemas.profile import DeviceProfile, Efficiency

TINY = "tiny-bert"


def _profile(refs: list[dict], sources: list[dict] | None = None) -> DeviceProfile:
    return DeviceProfile.model_validate({
        "name": "synthetic-npu", "display_name": "Synthetic NPU", "device_class": "mobile", "description": "test",
        "architecture": "aarch64", "memory_total_gb": 8, "memory_usable_gb": 4, "memory_bandwidth_gbps": 50,
        "compute_units": [{"name": "npu", "kind": "npu", "peak_tops_dense": {"fp16": 10, "int8": 20},
                           "precisions": ["fp16", "int8"]}],
        "runtimes": [{"name": "qnn", "provider": "htp", "unit": "npu", "precisions": ["fp16", "int8"],
                      "format": "dlc"}],
        "sources": sources if sources is not None else [{"id": "S1", "title": "a page",
                                                         "url": "https://example.org/results"}],
        "confidence": "unverified", "reference_results": refs})


def _ref(seq: int, ms: float, reserved: bool = False, source: str = "S1") -> dict:
    return {"model": TINY, "batch": 1, "seq_len": seq, "precision": "fp16", "runtime": "qnn", "provider": "htp",
            "latency_ms": ms, "source": source, "reserved_for_validation": reserved}


def test_reference_results_validate_and_bad_source_names_the_field():
    p = _profile([_ref(64, 1.0)])
    assert p.reference_results[0].published_latency_ms == 1.0
    with pytest.raises(ValidationError) as exc:
        _profile([_ref(64, 1.0), _ref(64, 2.0, source="NOPE")])
    assert "reference_results.1.source" in str(exc.value) and "NOPE" in str(exc.value)
    with pytest.raises(ValidationError) as exc:  # a published result needs a public URL
        _profile([_ref(64, 1.0)], sources=[{"id": "S1", "title": "no url"}])
    assert "reference_results.0.source" in str(exc.value)
    bad_rt = _ref(64, 1.0) | {"provider": "gpu"}
    with pytest.raises(ValidationError) as exc:
        _profile([bad_rt])
    assert "reference_results.0.runtime" in str(exc.value)
    thr = _ref(64, 1.0) | {"latency_ms": None, "throughput_per_s": 50.0, "batch": 2}
    assert _profile([thr]).reference_results[0].published_latency_ms == pytest.approx(40.0)


def test_shipped_reference_results_mark_the_issue_reserved_sets():
    agx = load_profile_file(shipped_profiles_dir() / "jetson-agx-orin.yaml")
    nx = load_profile_file(shipped_profiles_dir() / "jetson-orin-nx.yaml")
    s24 = load_profile_file(shipped_profiles_dir() / "snapdragon-8-gen3.yaml")
    for prof in (agx, nx):
        bert = [r for r in prof.reference_results if r.model.startswith("bert")]
        assert bert and all(r.reserved_for_validation for r in bert)
    for r in s24.reference_results:
        assert r.reserved_for_validation == (r.model in ("bert-base-mlm", "vit-b16"))
    for prof in (agx, nx, s24):
        urls = {s.id: s.url for s in prof.sources}
        assert all(urls[r.source].startswith("https://") for r in prof.reference_results)


def test_fit_never_uses_reserved_results():
    train = [_ref(32, 0.4), _ref(64, 0.7), _ref(128, 1.5)]
    a = calibrate_from_published(_profile(train + [_ref(96, 1.0, reserved=True)]))
    b = calibrate_from_published(_profile(train + [_ref(96, 500.0, reserved=True)]))
    assert a.fits[0].efficiency == b.fits[0].efficiency
    res = [c for c in b.published if c.reserved_for_validation]
    assert len(res) == 1 and not res[0].used_for_fit and res[0].leave_one_out_ms is None
    assert all(c.used_for_fit for c in b.published if not c.reserved_for_validation)
    e = a.fits[0].efficiency
    assert 0 < e.compute <= 1 and 0 < e.memory <= 1 and e.per_op_overhead_us >= 0


def test_only_reserved_results_leave_the_runtime_unfitted():
    cal = calibrate_from_published(_profile([_ref(64, 1.0, reserved=True)]))
    assert cal.fits == [] and any("only reserved" in n for n in cal.notes)
    assert cal.published[0].reserved_for_validation and not cal.published[0].used_for_fit


def _predict(prof: DeviceProfile, seq: int, eff: Efficiency) -> float:
    p = prof.model_copy(deep=True)
    p.runtimes[0].efficiency["fp16"] = eff
    spec = _spec(seq)
    unit = p.unit("npu")
    return cm.predict(spec, p, p.runtimes[0], unit, "fp16",
                      cm.block_costs(spec, p, unit, "fp16", runtime=p.runtimes[0])).latency_ms


def _spec(seq: int):
    from edge_sdk.calibration.published import resolve_model

    return inspect_model(resolve_model(TINY), batch=1, seq_len=seq)


def test_leave_one_out_is_a_fit_without_the_point():
    """Two results generated by a known efficiency: the compute-only fit (overhead and memory kept, < 3 points)
    recovers it, and each leave-one-out prediction is the other point's own fit applied to this one."""
    base = _profile([])
    truth = Efficiency(compute=0.3, memory=0.6, per_op_overhead_us=15)
    ms = {s: _predict(base, s, truth) for s in (32, 128)}
    cal = calibrate_from_published(_profile([_ref(32, ms[32]), _ref(128, ms[128] * 1.2)]))
    fit = cal.fits[0]
    assert fit.points == 2 and "kept the profile's memory fraction and per-op overhead" in fit.note
    assert fit.efficiency.memory == 0.6 and fit.efficiency.per_op_overhead_us == 15
    for c in cal.published:  # LOO: a one-point fit on the other result, which reproduces that result exactly
        other = next(o for o in cal.published if o is not c)
        solo = calibrate_from_published(_profile([_ref(other.seq_len, other.published_ms)]))
        assert solo.published[0].predicted_ms == pytest.approx(other.published_ms, rel=0.02)
        want = _predict(base, c.seq_len, solo.fits[0].efficiency)
        assert c.leave_one_out_ms == pytest.approx(want, rel=1e-6)
    errs = [abs(c.leave_one_out_ms / c.published_ms - 1) for c in cal.published]
    assert fit.fit_error_max == pytest.approx(max(errs)) and fit.fit_error_median == pytest.approx(
        sorted(errs)[0] + (sorted(errs)[1] - sorted(errs)[0]) / 2)
    assert all(math.isfinite(c.predicted_ms) for c in cal.published)


def test_fusion_lowers_tensorrt_overhead_and_memory_not_ort_cpu():
    prof = load_profile_file(shipped_profiles_dir() / "jetson-agx-orin.yaml")
    spec = inspect_model(_bert_base(), batch=1, seq_len=384)
    trt = next(r for r in prof.runtimes if r.name == "tensorrt" and r.provider == "gpu")
    unit = prof.unit("gpu")
    fused = cm.predict(spec, prof, trt, unit, "fp16", cm.block_costs(spec, prof, unit, "fp16", runtime=trt))
    plain = cm.predict(spec, prof, trt, unit, "fp16",
                       cm.block_costs(spec, prof, unit, "fp16", runtime=trt, fuse=False))
    assert fused.overhead_ms < plain.overhead_ms and fused.memory_ms < plain.memory_ms
    assert fused.compute_ms == pytest.approx(plain.compute_ms)
    bc = cm.block_costs(spec, prof, unit, "fp16", runtime=trt)
    assert any("MHA" in f for f in bc.fused)
    # layer times still add up to the prediction on a fused runtime
    assert sum(cm.layer_times_ms(spec, prof, trt, unit, "fp16").values()) == pytest.approx(fused.latency_ms, rel=1e-6)
    cpu_rt = next(r for r in prof.runtimes if r.provider == "CPUExecutionProvider")
    cpu = prof.unit("cpu")
    a = cm.predict(spec, prof, cpu_rt, cpu, "fp32", cm.block_costs(spec, prof, cpu, "fp32", runtime=cpu_rt))
    b = cm.predict(spec, prof, cpu_rt, cpu, "fp32", cm.block_costs(spec, prof, cpu, "fp32", runtime=cpu_rt, fuse=False))
    assert a.latency_ms == b.latency_ms


def _bert_base():
    from edge_sdk.calibration.published import resolve_model

    return resolve_model("bert-base")


@pytest.mark.parametrize("name", ["t4", "l4"])
def test_datacenter_gpus_carry_nvidias_tensorrt_bert_results_for_fitting(name):
    """NVIDIA's TensorRT BERT demo table (INT8 and FP16, BERT-base/large, 128/384 tokens): fitted on, never reserved,
    each cited to the README at a pinned commit."""
    prof = load_profile_file(shipped_profiles_dir() / f"{name}.yaml")
    refs = prof.reference_results
    assert refs and not any(r.reserved_for_validation for r in refs)
    assert {r.precision for r in refs} == {"int8_static", "fp16"} and {r.seq_len for r in refs} == {128, 384}
    urls = {s.id: s.url for s in prof.sources}
    for r in refs:
        assert (r.runtime, r.provider) == ("tensorrt", "gpu") and r.statistic
        url = urls[r.source]
        assert url.startswith("https://github.com/NVIDIA/TensorRT/blob/") and url.endswith("/demo/BERT/README.md")
        assert len(url.split("/blob/")[1].split("/")[0]) == 40  # a commit, not a branch
