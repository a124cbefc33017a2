"""What does the planner predict for a bundle on the machine that ran it, with that machine's newest calibration?

A bundle carries the prediction made when it was built. By the time it is benchmarked the device may have been
calibrated (`edge-sdk calibrate`), so the bench re-costs the bundle's plan (its ModelSpec travels in the manifest)
with the matching device profile and calibration, and says which one it used; without a plan ModelSpec, a known
profile or a matching plan candidate it keeps the build-time prediction and says so.
"""

from __future__ import annotations

from ..schemas.calibration import Calibration
from ..schemas.plan import Plan, Prediction
from ..schemas.profile import DeviceProfile


def device_profile(profile_name: str | None, *, calibration: bool = True, calibrations_dir=None
                   ) -> tuple[DeviceProfile | None, str | None, Calibration | None]:
    """The profile of the machine that ran a benchmark with its newest matching calibration applied, the line
    naming that calibration and the calibration itself (None, None when none was used)."""
    if not profile_name:
        return None, None, None
    from ..calibration import apply_calibration, find_for
    from ..errors import InputError
    from ..profiles import load_registry

    try:
        prof, _ = load_registry().resolve(profile_name)
    except InputError:
        return None, None, None
    found = find_for(prof, directory=calibrations_dir) if calibration else None
    if found is None or found.calibration is None:
        return prof, None, None
    return apply_calibration(prof, found.calibration), found.describe(), found.calibration


def calibrated_prediction(plan: Plan | None, profile: DeviceProfile | None, used: str | None
                          ) -> tuple[Prediction | None, str]:
    """(the plan re-costed with the calibrated profile, basis). None: keep the prediction the bundle was built
    with."""
    build_time = "the bundle's build-time prediction"
    if used is None or plan is None or profile is None:
        return None, build_time + ("" if used else " (no matching calibration)")
    if plan.model_spec is None:
        return None, build_time + " (its plan carries no ModelSpec to re-cost)"
    from ..planner import predict_plan

    pred = predict_plan(plan, profile)
    if pred is None:
        return None, build_time + f" (profile {profile.name} has no candidate matching the plan)"
    return pred, f"re-costed with profile {profile.name}: {used.removeprefix('using ')}"


#: |reference probe / calibrated − 1| above which `bench` warns that the machine is not the one it calibrated
PROBE_TOLERANCE = 0.10


def calibration_reference(cal: Calibration | None) -> tuple[float | None, int | None]:
    """(ms, threads): the calibration suite's reference GEMM in `cal` and the threads it was timed with; (None,
    None) without one."""
    from ..calibration.suite import REFERENCE_KERNEL

    ref = [m for m in (cal.measurements if cal else []) if m.name == REFERENCE_KERNEL and m.runtime == "onnxruntime"]
    return (ref[0].median_ms, cal.threads) if ref else (None, None)


def compare_probe(machine, ref_ms: float | None, same_threads: bool) -> None:
    """Fill machine.reference_probe's calibrated time and ratio, and warn when the machine runs slower or faster
    than when it was calibrated."""
    probe = machine.reference_probe if machine is not None else None
    if probe is None or not probe.ms or not ref_ms or not same_threads:
        return
    # the faster of the two timings around the run: a burst of someone else's work during one 0.3 s timing (this
    # VM's reference GEMM varies 0.33-0.63 ms from one timing to the next) is not a slower machine
    now = min(t for t in (probe.ms, probe.after_ms) if t)
    ratio = now / ref_ms
    machine.reference_probe = probe.model_copy(update={"calibrated_ms": ref_ms, "ratio": round(ratio, 3)})
    if abs(ratio - 1) > PROBE_TOLERANCE:
        machine.warnings.append(
            f"the calibration's reference GEMM ran {ratio:.2f}x its calibrated time on this machine around the run "
            f"({now:.3f} vs {ref_ms:.3f} ms): the machine is {'slower' if ratio > 1 else 'faster'} than when it "
            f"was calibrated, so the calibrated prediction is off by about that much; recalibrate "
            f"(`edge-sdk calibrate`) if it stays so")
