"""The planner: from a ModelSpec and a DeviceProfile to ranked, explained Plans (`plan_for_profile`).

`edge_sdk.plan` / `edge_sdk.plan_devices` (api.py) resolve the device and inspect the model, then call it."""

from __future__ import annotations

from pathlib import Path

from ..schemas.plan import ParallelLayout, Plan, PlanSet
from .costmodel import layer_times_ms
from .search import (DEFAULT_MAX_QUALITY_DROP, OBJECTIVES, Constraints, plan_for_profile, predict_plan,
                     smallest_footprint)
from .space import RUNTIME_PRECISION

__all__ = ["Constraints", "DEFAULT_MAX_QUALITY_DROP", "OBJECTIVES", "RUNTIME_PRECISION", "ParallelLayout", "Plan",
           "PlanSet", "layer_times_ms", "load_plan", "plan_for_profile", "predict_plan", "save_plan",
           "smallest_footprint"]


def load_plan(path: str | Path) -> Plan:
    """Read a Plan JSON (or a PlanSet, taking its best plan); an unknown knob or a bad value names the field."""
    from ..artifacts import read_json, validate
    from ..errors import InputError

    data = read_json(path, "plan")
    if isinstance(data, dict) and "plans" in data and "passes" not in data:
        if not data["plans"]:
            raise InputError(f"{path}: field 'plans': empty; expected at least one plan")
        data = {**data["plans"][0], "model_spec": data["plans"][0].get("model_spec") or data.get("model_spec")}
        # a PlanSet: its best plan, carrying the PlanSet's ModelSpec
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with Plan fields")
    return validate(Plan, data, path)


def save_plan(plan_obj: Plan, path: str | Path) -> Path:
    """Write atomically (temp file, then rename)."""
    from ..artifacts import atomic_write_text

    return atomic_write_text(path, plan_obj.model_dump_json(indent=2))
