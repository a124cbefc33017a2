"""Fleets: a named group of deploy targets and how to roll out to it (Fleet), and what one command did on each of
its devices (FleetResult, one TargetOutcome per device).

A fleet file lives in `<targets dir>/fleets/NAME.yaml`:

    name: lab
    targets: [jetson-1, "pi-*"]       # target names or glob patterns over the targets directories
    tags: [bench]                     # and/or: every target whose `tags` include all of these
    parallel: 4                       # devices worked on at once
    canary: 1                         # deploy: this many first, health-checked, before the rest
    max_unavailable: 2                # deploy: at most this many devices switching `current` at once
    latency_budget_ms: 25             # deploy: a canary whose p50 (batch 1) is slower fails the health check
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, model_validator

from .base import Strict

FleetAction = Literal["deploy", "bench", "check", "rollback", "calibrate"]
TargetStatus = Literal["ok", "failed", "problems", "rolled_back", "skipped"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Fleet(Strict):
    """A group of deploy targets, selected by name/glob and/or tags, with rollout defaults."""

    schema_version: int = Field(1, ge=1, le=1)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Command-line name of the fleet")
    description: str | None = None
    targets: list[str] = Field(default_factory=list, description="target names or glob patterns (fnmatch)")
    tags: list[str] = Field(default_factory=list, description="select targets whose tags include all of these")
    parallel: int = Field(4, ge=1, le=256, description="devices worked on at once")
    canary: int = Field(0, ge=0, description="deploy: devices deployed and health-checked before the rest")
    max_unavailable: int | None = Field(None, ge=1, description="deploy: devices switching `current` at once")
    latency_budget_ms: float | None = Field(None, gt=0, description="deploy: canary health check p50 budget")

    @model_validator(mode="after")
    def _selects_something(self) -> "Fleet":
        if not self.targets and not self.tags:
            raise ValueError("a fleet needs 'targets' (names or glob patterns) or 'tags' (or both)")
        return self


class TargetOutcome(Strict):
    """What a fleet command did on one device."""

    target: str
    status: TargetStatus = Field(description="ok; failed (error says why); problems (targets check found "
                                             "contradictions); rolled_back (a canary undone); skipped (rollout "
                                             "stopped before it)")
    exit_code: int = Field(description="what the single-target command would have exited with")
    stage: str = Field(description="the last stage reached (connecting, uploading, activating, checking, ...)")
    canary: bool = False
    error: str | None = None
    note: str | None = None
    bytes_sent: int = 0
    seconds: float = 0.0
    result: dict[str, Any] | None = Field(None, description="the Release, BenchResult, TargetCheck, Rollback or "
                                                            "Calibration of this device, as JSON")


class FleetResult(Strict):
    """One command over many devices: an outcome per device, and an exit code that says whether some failed."""

    kind: Literal["fleet"] = "fleet"
    action: FleetAction
    fleet: str | None = Field(None, description="fleet name, when one was used")
    parallel: int
    canary: int = 0
    max_unavailable: int | None = None
    targets: list[TargetOutcome]
    stopped: str | None = Field(None, description="why a rollout stopped before deploying every device")
    ok: bool = Field(description="every device succeeded")
    exit_code: int = Field(description="0 all ok; 8 some failed; the shared code when every device failed alike")
    seconds: float
    started_at: str = Field(default_factory=_now)

    def failed(self) -> list[TargetOutcome]:
        return [t for t in self.targets if t.status != "ok"]
