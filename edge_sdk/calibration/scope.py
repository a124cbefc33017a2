"""What does `calibrate` cover on a profile, and where is its kernel suite cached?

CALIBRATED lists the (runtime, provider) pairs whose kernels are timed and in which precisions; the suite for a
profile's calibrated runtimes is written once under the edge-sdk cache (`calibration-suite/<full-range|reduce-range>
[-openvino]`, see suite.py for what is in it). `bench` reads the cached suite's reference kernel (cached_suite) to
compare a machine's speed with its calibration's, without importing the calibration runner (run.py), which imports
bench's own subprocess runner.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..schemas.profile import DeviceProfile, Runtime

#: (runtime, provider) → the precisions whose kernels it times, in the order they are calibrated.
CALIBRATED = {("onnxruntime", "CPUExecutionProvider"): ("fp32", "int8_dynamic", "int8_static", "int4_weight_only"),
              ("openvino", "CPU"): ("fp32", "int8_static")}
#: a precision is timed where the runtime lists the hardware precision it needs
_NEEDS = {"int8_dynamic": "int8", "int8_static": "int8", "int4_weight_only": "int4"}


def calibrated_runtimes(profile: DeviceProfile) -> list[Runtime]:
    """The profile's runtimes edge-sdk can calibrate, in CALIBRATED's order (onnxruntime first)."""
    found = [rt for key in CALIBRATED for rt in profile.runtimes if (rt.name, rt.provider) == key]
    if not found:
        have = ", ".join(f"{r.name}/{r.provider}" for r in profile.runtimes)
        raise InputError(f"profile {profile.name}: lists no runtime edge-sdk can calibrate yet ("
                         f"{', '.join(f'{a}/{b}' for a, b in CALIBRATED)}); it has {have}")
    return found


def calibrated_precisions(rt: Runtime) -> tuple[str, ...]:
    return tuple(p for p in CALIBRATED[(rt.name, rt.provider)] if p == "fp32" or _NEEDS[p] in rt.precisions)


def suite_place(profile: DeviceProfile, runtimes: list[Runtime]) -> tuple[Path, bool]:
    """Where the suite for these runtimes lives in the cache, and whether its int8 kernels use reduce_range."""
    from ..opgraph.make import cache_root
    from ..planner.space import RuntimeUnit, int8_reduce_range

    rt = runtimes[0]
    reduce = bool(int8_reduce_range(profile, RuntimeUnit(rt, profile.unit(rt.unit))))
    openvino = any(r.name == "openvino" for r in runtimes)
    name = ("reduce-range" if reduce else "full-range") + ("-openvino" if openvino else "")
    return cache_root() / "calibration-suite" / name, reduce


def cached_suite(profile: DeviceProfile) -> Path | None:
    """The suite `calibrate --local` made for `profile`, if it is in the cache (never builds one): `bench --local`
    times its reference kernel to compare the machine's speed with the calibration's."""
    try:
        where, _ = suite_place(profile, calibrated_runtimes(profile))
    except InputError:
        return None
    return where if (where / "suite.json").is_file() else None
