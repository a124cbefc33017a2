"""Rolling deploys: one verified bundle to many devices — canaries first, health-checked, then the rest; a failing
canary stops the rollout and the canaries go back to what they ran before.

- The bundle is verified here once (deploy.shippable); each device gets only what it lacks (content addressing:
  prepare/link on the device), so re-rolling an unchanged bundle sends no model bytes anywhere.
- `parallel` bounds how many devices are worked on at once; `max_unavailable` bounds how many are between "switch
  `current`" and "healthy" at any moment (uploads, which do not disturb a running device, are not bounded by it).
- The health check is injected (remote/ cannot run benchmarks; the API passes one built on `bench`): it returns
  None when the device is healthy, or why not.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..errors import EdgeSdkError, RemoteError
from ..schemas.fleet import FleetResult, TargetOutcome
from ..schemas.release import Release
from .deploy import ShippableBundle, deploy
from .fleet import Board, Reporter, fleet_result, run_each
from .releases import rollback
from .targets import DeployTarget

HealthCheck = Callable[[DeployTarget, Release], "str | None"]


class HealthCheckFailed(RemoteError):
    """A canary deployed but is not healthy; `.result` is its Release (so the rollout can undo it)."""

    def __init__(self, message: str, result: Release):
        super().__init__(message)
        self.result = result


def _deployer(bundle: ShippableBundle, gate: threading.BoundedSemaphore | None, health_check: HealthCheck | None,
              deploy_kw: dict) -> Callable[[DeployTarget, Reporter], Release]:
    def one(t: DeployTarget, rep: Reporter) -> Release:
        held = []

        def before_switch() -> None:
            if gate is not None:
                rep.stage("waiting to switch")
                gate.acquire()
                held.append(True)

        try:
            rel = deploy(bundle, t, on_stage=rep.stage, on_progress=rep.progress, before_switch=before_switch,
                         **deploy_kw)
            if health_check is not None:
                rep.stage("checking")
                try:
                    why = health_check(t, rel)
                except EdgeSdkError as exc:
                    why = str(exc)
                if why:
                    raise HealthCheckFailed(f"health check failed on {t.name}: {why}", rel)
            return rel
        finally:
            if held:
                gate.release()  # type: ignore[union-attr]

    return one


def _undo(t: DeployTarget, o: TargetOutcome, board: Board, why: str, deploy_kw: dict) -> TargetOutcome:
    """Put a canary back on the release it ran before the rollout (when the rollout had switched it)."""
    rel = o.result or {}
    if not rel.get("switched"):
        return o  # it failed before switching, or the release already was current: nothing to undo
    prev = rel.get("previous_release")
    if not prev:
        note = f"left on {rel.get('release_id')}: no earlier release on the device to return to"
        board.finish(t.name, o.status, note)
        return o.model_copy(update={"note": note})
    board.stage(t.name, "rolling back")
    try:
        rollback(t, to=prev, accept_new_host_key=deploy_kw.get("accept_new_host_key", False),
                 lock_wait_s=deploy_kw.get("lock_wait_s", 300.0))
    except EdgeSdkError as exc:
        note = f"rollback to {prev} failed too: {exc}"
        board.finish(t.name, "failed", note)
        return o.model_copy(update={"status": "failed", "note": note, "exit_code": exc.exit_code})
    note = f"rolled back to {prev} ({why})"
    board.finish(t.name, "rolled_back", note)
    return o.model_copy(update={"status": "rolled_back", "stage": "rolled back", "note": note,
                                "exit_code": o.exit_code or 5})


def rollout(bundle: ShippableBundle, targets: list[DeployTarget], *, parallel: int = 4, canary: int = 0,
            max_unavailable: int | None = None, health_check: HealthCheck | None = None,
            board: Board | None = None, fleet=None, **deploy_kw) -> FleetResult:
    """Deploy `bundle` to every target: the first `canary` targets first (deployed, health-checked), then the rest.

    A failing canary (deploy or health check) stops the rollout: every canary that was switched is rolled back to
    its previous release, the rest are `skipped`. deploy_kw go to deploy() (registry, force, accept_new_host_key,
    lock_wait_s). The FleetResult's exit code is 0, or 8 when some devices failed.
    """
    t0 = time.monotonic()
    if not deploy_kw.get("force") and deploy_kw.get("registry") is None:
        from ..profiles import load_registry

        deploy_kw["registry"] = load_registry()  # once for the fleet: parsing the profiles costs ~0.4 s
    canary = max(0, min(canary, len(targets)))
    canaries, rest = targets[:canary], targets[canary:]
    board = board or Board()
    board.add((t.name for t in canaries), canary=True)
    board.add(t.name for t in rest)
    gate = threading.BoundedSemaphore(max_unavailable) if max_unavailable else None
    stopped = None
    outcomes = run_each(canaries, _deployer(bundle, gate, health_check, deploy_kw), parallel=parallel, board=board,
                        canary=True)
    bad = [o for o in outcomes if o.status != "ok"]
    if bad:
        stopped = "canary " + "; ".join(f"{o.target} failed: {o.error}" for o in bad)
        why = f"canary {', '.join(o.target for o in bad)} failed"
        outcomes = [_undo(t, o, board, why, deploy_kw) for t, o in zip(canaries, outcomes)]
        for t in rest:
            board.finish(t.name, "skipped", "rollout stopped: " + why)
            outcomes.append(TargetOutcome(target=t.name, status="skipped", exit_code=5, stage="queued",
                                          error=f"not deployed: the rollout stopped because {why}"))
    else:
        outcomes += run_each(rest, _deployer(bundle, gate, None, deploy_kw), parallel=parallel, board=board)
    return fleet_result("deploy", outcomes, parallel=parallel, seconds=time.monotonic() - t0, fleet=fleet,
                        canary=canary, max_unavailable=max_unavailable, stopped=stopped)
