"""A profile's `calibration_sibling`: a runtime with no published result on the device that may be fitted takes the
efficiency fitted on the named sibling (same accelerator architecture, cited), says so, and never fits on reserved
results, neither its own nor the sibling's."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from test_published_fit import _profile, _ref  # the synthetic NPU profile and its fp16 tiny-bert results

from edge_sdk.calibration.published import calibrate_from_published
from edge_sdk.profiles.loader import load_profile_file, shipped_profiles_dir
from edge_sdk.schemas.profile import DeviceProfile

CITE = {"calibration_sibling": {"source": "S1", "confidence": "vendor", "note": "same NPU architecture"}}


def _small(refs: list[dict], **extra) -> DeviceProfile:
    """The synthetic NPU at half the peak and bandwidth, declaring the full-size one as its sibling."""
    d = _profile(refs).model_dump(mode="json")
    d.update(name="synthetic-npu-small", memory_bandwidth_gbps=25, calibration_sibling="synthetic-npu",
             citations=CITE)
    d["compute_units"][0]["peak_tops_dense"] = {"fp16": 5, "int8": 10}
    d.update(extra)
    return DeviceProfile.model_validate(d)


BIG = _profile([_ref(32, 0.5), _ref(64, 0.8), _ref(128, 1.6), _ref(96, 0.01, reserved=True)])


def test_only_reserved_runtime_takes_the_siblings_fit_and_says_so():
    big = calibrate_from_published(BIG)
    a = calibrate_from_published(_small([_ref(96, 2.0, reserved=True)]), siblings={"synthetic-npu": BIG})
    b = calibrate_from_published(_small([_ref(96, 900.0, reserved=True)]), siblings={"synthetic-npu": BIG})
    assert [f.efficiency for f in a.fits] == [f.efficiency for f in b.fits]
    (fit,) = a.fits
    assert fit.efficiency == big.fits[0].efficiency and fit.points == 0
    assert "calibration_sibling synthetic-npu" in fit.note and "3 results there" in fit.note
    assert any("fitted on sibling synthetic-npu" in n for n in a.notes)
    (res,) = a.published
    assert res.reserved_for_validation and not res.used_for_fit and res.leave_one_out_ms is None


def test_sibling_reserved_results_change_nothing():
    """The sibling's fit is its own calibration, which never fits on its reserved results."""
    other = _profile([_ref(32, 0.5), _ref(64, 0.8), _ref(128, 1.6), _ref(96, 500.0, reserved=True)])
    a = calibrate_from_published(_small([_ref(96, 2.0, reserved=True)]), siblings={"synthetic-npu": BIG})
    b = calibrate_from_published(_small([_ref(96, 2.0, reserved=True)]), siblings={"synthetic-npu": other})
    assert a.fits[0].efficiency == b.fits[0].efficiency


def test_own_fittable_results_win_over_the_sibling():
    cal = calibrate_from_published(_small([_ref(32, 3.0), _ref(96, 2.0, reserved=True)]),
                                   siblings={"synthetic-npu": BIG})
    assert cal.fits[0].points == 1 and "sibling" not in cal.fits[0].note
    assert not any("sibling" in n for n in cal.notes)


def test_sibling_without_results_of_its_own_leaves_the_runtime_unfitted():
    bare = _profile([])
    cal = calibrate_from_published(_small([_ref(96, 2.0, reserved=True)]), siblings={"synthetic-npu": bare})
    assert cal.fits == [] and any("left unfitted" in n for n in cal.notes)


def test_sibling_must_be_cited_and_not_the_profile_itself():
    with pytest.raises(ValidationError) as exc:
        _small([], citations={})
    assert "citations.calibration_sibling" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        _small([], calibration_sibling="synthetic-npu-small")
    assert "names the profile itself" in str(exc.value)


@pytest.mark.parametrize("name", ["jetson-orin-nx", "jetson-orin-nano", "drive-agx-orin"])
def test_orin_modules_declare_the_agx_module_with_a_vendor_url(name):
    prof = load_profile_file(shipped_profiles_dir() / f"{name}.yaml")
    assert prof.calibration_sibling == "jetson-agx-orin"
    cite = prof.citations["calibration_sibling"]
    urls = {s.id: s.url for s in prof.sources}
    assert (urls.get(cite.source) or "").startswith("https://developer.nvidia.com/")


def test_orin_nano_without_results_gets_the_agx_tensorrt_fits():
    agx = load_profile_file(shipped_profiles_dir() / "jetson-agx-orin.yaml")
    nano = calibrate_from_published(load_profile_file(shipped_profiles_dir() / "jetson-orin-nano.yaml"),
                                    siblings={"jetson-agx-orin": agx})
    by = {(f.runtime, f.provider, f.precision): f for f in nano.fits}
    assert set(by) == {("tensorrt", "gpu", "fp16"), ("tensorrt", "gpu", "int8_static")}
    assert all(f.points == 0 and "jetson-agx-orin" in f.note for f in by.values())
    assert nano.published == []


def test_the_api_finds_a_sibling_among_the_users_own_profiles(tmp_path):
    """`edge-sdk calibrate --from-published X --profiles DIR`: a sibling that only the user's directory has."""
    import yaml

    import edge_sdk

    small = _small([_ref(96, 2.0, reserved=True)])
    for prof in (BIG, small):
        (tmp_path / f"{prof.name}.yaml").write_text(yaml.safe_dump(prof.model_dump(mode="json", exclude_none=True)))
    cal = edge_sdk.calibrate(from_published="synthetic-npu-small", profiles_dir=[str(tmp_path)])
    assert any("fitted on sibling synthetic-npu" in n for n in cal.notes)
