"""What does the planner predict for a bundle on the machine that ran it, with that machine's newest calibration?

A bundle carries the prediction made when it was built. By the time it is benchmarked the device may have been
calibrated (`edge-sdk calibrate`), so the bench re-costs the bundle's plan (its ModelSpec travels in the manifest)
with the matching device profile and calibration, and says which one it used; without a plan ModelSpec, a known
profile or a matching plan candidate it keeps the build-time prediction and says so.
"""

from __future__ import annotations

from ..schemas.plan import Plan, Prediction
from ..schemas.profile import DeviceProfile


def device_profile(profile_name: str | None, *, calibration: bool = True, calibrations_dir=None
                   ) -> tuple[DeviceProfile | None, str | None]:
    """The profile of the machine that ran a benchmark, with its newest matching calibration applied, and the line
    naming that calibration (None when none was used)."""
    if not profile_name:
        return None, None
    from ..calibration import calibrated
    from ..errors import InputError
    from ..profiles import load_registry

    try:
        prof, _ = load_registry().resolve(profile_name)
    except InputError:
        return None, None
    prof, used, _ = calibrated(prof, use=calibration, directory=calibrations_dir)
    return prof, used


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

