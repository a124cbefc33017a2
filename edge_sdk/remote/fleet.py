"""Fleets: one command on many targets — which ones (names, globs, tags, fleet files), worked on concurrently with
a bound, each failure kept to its own device, a live board of every device's progress, one FleetResult at the end.

    targets = resolve_group("jetson-*,tag:lab", None)              # or resolve_group(None, "lab") for a fleet file
    board = Board([t.name for t in targets])                        # the CLI draws it while the workers update it
    outcomes = run_each(targets, lambda t, rep: check_target(t, prof), parallel=8, board=board)
    result = fleet_result("check", outcomes, parallel=8, seconds=...)

Why threads: every device is an SSH connection waiting on the network or on the device; paramiko releases the GIL
while it waits and encrypts in C, so 8–16 threads keep that many devices busy from one process.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ValidationError

from ..errors import EXIT_BUG, EXIT_FLEET, EXIT_OK, EdgeSdkError, InputError, format_validation_error
from ..schemas.fleet import Fleet, FleetResult, TargetOutcome
from .targets import ENV_VAR, DeployTarget, load_target_file, load_targets, targets_dirs

FLEETS_DIR = "fleets"  # <targets dir>/fleets/NAME.yaml


# ---- which targets ----

def load_fleet_file(path: str | Path) -> Fleet:
    from ..profiles.loader import read_yaml

    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a YAML mapping with fleet fields (name, targets, tags, ...), "
                         f"got {type(data).__name__}")
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(str(path), exc)) from None


def load_fleets(dirs: list[Path]) -> dict[str, tuple[Fleet, Path]]:
    """Every fleet file under <dir>/fleets/ of the targets directories (a later directory overrides)."""
    out: dict[str, tuple[Fleet, Path]] = {}
    for d in dirs:
        fd = d / FLEETS_DIR
        if not fd.is_dir():
            continue
        for f in sorted(p for p in fd.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
            fl = load_fleet_file(f)
            out[fl.name] = (fl, f)
    return out


def select_targets(patterns: list[str], tags: list[str], targets: dict[str, DeployTarget], *,
                   what: str, where: str) -> list[DeployTarget]:
    """Targets whose name matches a pattern (exact or fnmatch glob; all when there are none) and that carry every
    tag; in pattern order, each once. A pattern that matches nothing is an error (a typo must not shrink a fleet)."""
    picked: dict[str, DeployTarget] = {}
    for p in patterns or ["*"]:
        hits = [t for n, t in sorted(targets.items()) if n == p or fnmatch.fnmatchcase(n, p)]
        if not hits and patterns:
            import difflib

            close = difflib.get_close_matches(p, list(targets), n=3, cutoff=0.4)
            raise InputError(f"{what}: '{p}' matches no target in {where}"
                             + (f"; closest: {', '.join(close)}" if close else "") + " (see `edge-sdk targets`)")
        for t in hits:
            picked.setdefault(t.name, t)
    out = [t for t in picked.values() if set(tags) <= set(t.tags)]
    if not out:
        raise InputError(f"{what}: selects no target in {where}"
                         + (f" (none carries tags {', '.join(tags)})" if tags else ""))
    return out


def resolve_group(targets_opt: str | None, fleet_opt: str | None, cli_dirs: list[str] | None = None,
                  registry=None) -> tuple[Fleet | None, list[DeployTarget]]:
    """`--targets a,b,"jetson-*",tag:lab,path/to/t.yaml` (each item adds devices) or `--fleet NAME|path.yaml` (its
    patterns, filtered by its tags) → (fleet or None, targets)."""
    if (targets_opt is None) == (fleet_opt is None):
        raise InputError("give one of --targets a,b,c or --fleet NAME")
    dirs = targets_dirs(cli_dirs)
    where = ", ".join(str(d) for d in dirs) or f"no targets directory (use --targets-dir or ${ENV_VAR})"
    if fleet_opt is not None:
        p = Path(fleet_opt)
        if p.suffix in (".yaml", ".yml") or os.sep in fleet_opt:
            if not p.is_file():
                raise InputError(f"--fleet: fleet file not found: {fleet_opt}")
            fleet = load_fleet_file(p)
        else:
            fleets = load_fleets(dirs)
            if fleet_opt not in fleets:
                have = ", ".join(sorted(fleets)) or "none"
                raise InputError(f"--fleet: unknown fleet '{fleet_opt}' (fleets in <targets dir>/{FLEETS_DIR}/ of "
                                 f"{where}: {have})")
            fleet = fleets[fleet_opt][0]
        return fleet, select_targets(fleet.targets, fleet.tags, load_targets(dirs, registry),
                                     what=f"fleet '{fleet.name}'", where=where)
    items = [x.strip() for x in targets_opt.split(",") if x.strip()]
    if not items:
        raise InputError("--targets: expected comma-separated target names, globs or tag:NAME, got nothing")
    out: dict[str, DeployTarget] = {}
    known: dict[str, DeployTarget] | None = None
    for x in items:  # each item adds devices: a union, in the order given
        if x.endswith((".yaml", ".yml")) or os.sep in x:
            if not Path(x).is_file():
                raise InputError(f"--targets: target file not found: {x}")
            found = [load_target_file(x, registry)]
        else:
            known = known if known is not None else load_targets(dirs, registry)
            found = (select_targets([], [x[4:]], known, what=f"--targets {x}", where=where) if x.startswith("tag:")
                     else select_targets([x], [], known, what="--targets", where=where))
        for t in found:
            out.setdefault(t.name, t)
    return None, list(out.values())


# ---- the live board ----

@dataclass
class BoardRow:
    target: str
    canary: bool = False
    stage: str = "queued"
    bytes_done: int = 0
    bytes_total: int | None = None
    upload_started: float | None = None
    started: float | None = None
    finished: float | None = None
    status: str | None = None
    note: str = ""
    files: dict = field(default_factory=dict)

    def rate_mb_s(self, now: float | None = None) -> float | None:
        if self.upload_started is None or not self.bytes_done:
            return None
        dt = (self.finished or now or time.monotonic()) - self.upload_started
        return self.bytes_done / dt / 1e6 if dt > 0 else None


class Board:
    """Every device's stage, bytes and result, updated by the workers and read (copied) by whoever draws it."""

    def __init__(self, names: Iterable[str] = (), canaries: Iterable[str] = ()):
        self._rows: dict[str, BoardRow] = {}
        self._lock = threading.Lock()
        self.aborted = threading.Event()  # Ctrl-C: every device stops at its next stage or progress report
        self.add(canaries, canary=True)
        self.add(names)

    def add(self, names: Iterable[str], *, canary: bool = False) -> None:
        """Rows for devices the board does not show yet (a CLI can start drawing an empty board)."""
        with self._lock:
            for n in names:
                self._rows.setdefault(n, BoardRow(n, canary=canary))

    def stage(self, name: str, stage: str, info: dict | None = None) -> None:
        with self._lock:
            r = self._rows[name]
            r.stage = stage
            if r.started is None:
                r.started = time.monotonic()
            if stage == "uploading":
                r.bytes_total = (info or {}).get("bytes")
                r.upload_started = time.monotonic()
            elif stage == "waiting" and info:
                r.note = f"waiting for {info.get('holder') or 'another deploy'}"

    def progress(self, name: str, rel: str, done: int, total: int) -> None:
        with self._lock:
            r = self._rows[name]
            r.files[rel] = done
            r.bytes_done = sum(r.files.values())

    def finish(self, name: str, status: str, note: str = "") -> None:
        with self._lock:
            r = self._rows[name]
            r.status, r.note, r.finished = status, note, time.monotonic()
            if status in ("ok", "problems"):
                r.stage = "done"

    def get(self, name: str) -> BoardRow:
        with self._lock:
            return replace(self._rows[name], files=dict(self._rows[name].files))

    def rows(self) -> list[BoardRow]:
        with self._lock:
            return [replace(r, files={}) for r in self._rows.values()]


class Reporter:
    """What a fleet action gets to tell the board about its one device (deploy's on_stage / on_progress)."""

    def __init__(self, board: Board, name: str):
        self.board, self.name = board, name

    def stage(self, stage: str, info: dict | None = None) -> None:
        self._check()
        self.board.stage(self.name, stage, info)

    def progress(self, rel: str, done: int, total: int) -> None:
        self._check()
        self.board.progress(self.name, rel, done, total)

    def _check(self) -> None:
        if self.board.aborted.is_set():  # raised inside the device's own work: its connection closes, and with
            raise KeyboardInterrupt       # it the device-side lock or runner


# ---- running ----

Action = Callable[[DeployTarget, Reporter], Any]


def _dump(x: Any) -> dict | None:
    return x.model_dump(mode="json") if isinstance(x, BaseModel) else None


def run_one(t: DeployTarget, action: Action, board: Board, *, canary: bool = False) -> TargetOutcome:
    """Run action on one device; whatever it raises becomes this device's failed outcome, never the fleet's."""
    t0 = time.monotonic()
    rep = Reporter(board, t.name)
    rep.stage("connecting")
    try:
        res = action(t, rep)
    except EdgeSdkError as exc:
        row = board.get(t.name)
        board.finish(t.name, "failed", str(exc))
        return TargetOutcome(target=t.name, status="failed", exit_code=exc.exit_code, stage=row.stage,
                             canary=canary, error=str(exc), bytes_sent=row.bytes_done,
                             seconds=round(time.monotonic() - t0, 3), result=_dump(getattr(exc, "result", None)))
    except Exception as exc:  # a bug must not take the other devices down with it; it is reported as one
        row = board.get(t.name)
        board.finish(t.name, "failed", f"{type(exc).__name__}: {exc}")
        return TargetOutcome(target=t.name, status="failed", exit_code=EXIT_BUG, stage=row.stage, canary=canary,
                             error=f"unexpected error (a bug in edge-sdk): {type(exc).__name__}: {exc}",
                             bytes_sent=row.bytes_done, seconds=round(time.monotonic() - t0, 3))
    row = board.get(t.name)
    problems = list(getattr(res, "problems", []) or [])
    ok = bool(getattr(res, "ok", True))
    status = "ok" if ok else "problems"
    note = "" if ok else "; ".join(problems) or "not ok"
    board.finish(t.name, status, note)
    return TargetOutcome(target=t.name, status=status, exit_code=EXIT_OK if ok else 1, stage="done", canary=canary,
                         error=None if ok else note, bytes_sent=getattr(res, "bytes_sent", row.bytes_done),
                         seconds=round(time.monotonic() - t0, 3), result=_dump(res))


def run_each(targets: list[DeployTarget], action: Action, *, parallel: int, board: Board,
             canary: bool = False) -> list[TargetOutcome]:
    """action(target, reporter) on every target, at most `parallel` at once; outcomes in the targets' order."""
    if not targets:
        return []
    board.add((t.name for t in targets), canary=canary)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets))), thread_name_prefix="fleet") as pool:
        futures = [pool.submit(run_one, t, action, board, canary=canary) for t in targets]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            board.aborted.set()  # running devices stop at their next report; the rest never start
            for f in futures:
                f.cancel()
            raise


def fleet_result(action: str, outcomes: list[TargetOutcome], *, parallel: int, seconds: float,
                 fleet: Fleet | None = None, canary: int = 0, max_unavailable: int | None = None,
                 stopped: str | None = None) -> FleetResult:
    """The summary: ok when every device is ok; exit 0, 8 (some failed), or the code every device failed with."""
    bad = [o for o in outcomes if o.status != "ok"]
    if not bad:
        code = EXIT_OK
    elif len(bad) < len(outcomes) or len({o.exit_code for o in bad}) > 1:
        code = EXIT_FLEET
    else:
        code = bad[0].exit_code
    return FleetResult(action=action, fleet=fleet.name if fleet else None, parallel=parallel, canary=canary,
                       max_unavailable=max_unavailable, targets=outcomes, stopped=stopped, ok=not bad,
                       exit_code=code, seconds=round(seconds, 3))
