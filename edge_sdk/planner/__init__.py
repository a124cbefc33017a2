"""The planner: from a ModelSpec and a DeviceProfile to ranked, explained Plans."""

from __future__ import annotations

from pathlib import Path

from ..schemas.plan import ParallelLayout, Plan, PlanSet
from .search import DEFAULT_MAX_QUALITY_DROP, OBJECTIVES, Constraints, plan_for_profile

__all__ = ["Constraints", "DEFAULT_MAX_QUALITY_DROP", "OBJECTIVES", "ParallelLayout", "Plan", "PlanSet", "load_plan",
           "plan", "plan_devices", "save_plan"]


def plan(model, device: str = "host", *, batch: int = 1, seq_len: int = 128, objective: str = "latency",
         latency_ms: float | None = None, max_size_mb: float | None = None,
         max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP, top: int = 3, profiles_dir=None, spec=None) -> PlanSet:
    """`edge_sdk.plan("minilm", device="jetson")` → the same PlanSet `edge-sdk plan` prints."""
    from ..modelspec import inspect_model
    from ..profiles import load_registry

    reg = load_registry(profiles_dir or [])
    prof, note = reg.resolve(device)
    spec = spec or inspect_model(model, batch=batch, seq_len=seq_len)
    cons = Constraints(latency_ms=latency_ms, max_size_mb=max_size_mb, max_quality_drop=max_quality_drop)
    return plan_for_profile(spec, prof, model=str(model), objective=objective, constraints=cons, top=top,
                            device_note=note)


def plan_devices(model, devices: str = "all", **kw):
    """Plan every selected profile. Returns [(profile, PlanSet | InfeasibleError)]."""
    from ..errors import InfeasibleError
    from ..modelspec import inspect_model
    from ..profiles import load_registry

    reg = load_registry(kw.pop("profiles_dir", None) or [])
    spec = kw.pop("spec", None) or inspect_model(model, batch=kw.get("batch", 1), seq_len=kw.get("seq_len", 128))
    kw.pop("batch", None), kw.pop("seq_len", None)
    cons = Constraints(latency_ms=kw.pop("latency_ms", None), max_size_mb=kw.pop("max_size_mb", None),
                       max_quality_drop=kw.pop("max_quality_drop", DEFAULT_MAX_QUALITY_DROP))
    out = []
    for prof in reg.select(devices):
        try:
            out.append((prof, plan_for_profile(spec, prof, model=str(model), constraints=cons, **kw)))
        except InfeasibleError as exc:
            out.append((prof, exc))
    return out


def load_plan(path: str | Path) -> Plan:
    """Read a Plan JSON (or a PlanSet, taking its best plan); an unknown knob or a bad value names the field."""
    from ..artifacts import read_json, validate
    from ..errors import InputError

    data = read_json(path, "plan")
    if isinstance(data, dict) and "plans" in data and "passes" not in data:
        if not data["plans"]:
            raise InputError(f"{path}: field 'plans': empty; expected at least one plan")
        data = data["plans"][0]  # a PlanSet: take its best plan
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with Plan fields")
    return validate(Plan, data, path)


def save_plan(plan_obj: Plan, path: str | Path) -> Path:
    """Write atomically (temp file, then rename)."""
    from ..artifacts import atomic_write_text

    return atomic_write_text(path, plan_obj.model_dump_json(indent=2))
