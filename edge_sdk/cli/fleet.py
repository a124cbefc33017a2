"""`--targets a,b,c` / `--fleet NAME` on deploy, bench, targets check, rollback and calibrate: the shared options,
the live progress table (per device: stage, bytes, rate, result) and the summary with each device's exit status.

Exit codes: 0 every device ok; 8 some failed (the summary names each and why); when every device failed alike,
their code (5 unreachable, 2 bad input, 1 `targets check` found contradictions everywhere).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import typer
from rich.live import Live
from rich.table import Table

from ._common import console, console_err, note, print_json

TargetsOpt = typer.Option(None, "--targets", help="Several targets: comma-separated names, glob patterns "
                                                  "('pi-*'), tag:NAME or target YAML paths")
FleetOpt = typer.Option(None, "--fleet", help="A fleet: NAME of <targets dir>/fleets/NAME.yaml, or a fleet YAML")
ParallelOpt = typer.Option(None, "--parallel", min=1, help="Devices worked on at once (default: the fleet's, else 4)")

_STATUS = {"ok": "[green]ok[/green]", "failed": "[red]failed[/red]", "problems": "[yellow]problems[/yellow]",
           "rolled_back": "[yellow]rolled back[/yellow]", "skipped": "[dim]skipped[/dim]"}


def wants_fleet(target: Optional[str], targets: Optional[str], fleet: Optional[str]) -> bool:
    """True for --targets/--fleet; refuses mixing them with --target."""
    from ..errors import InputError

    if targets is None and fleet is None:
        return False
    if target is not None:
        raise InputError("give --target for one device, or --targets/--fleet for several — not both")
    if targets is not None and fleet is not None:
        raise InputError("give --targets or --fleet, not both")
    return True


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def board_table(board, title: str) -> Table:
    now = time.monotonic()
    t = Table(title=title)
    for col in ("target", "stage", "bytes", "rate", "result"):
        t.add_column(col, justify="right" if col in ("bytes", "rate") else "left")
    for r in board.rows():
        sent = f"{_mb(r.bytes_done)} / {_mb(r.bytes_total)}" if r.bytes_total else ("0" if r.stage == "done" else "")
        rate = r.rate_mb_s(now)
        secs = ((r.finished or now) - r.started) if r.started else 0.0
        result = _STATUS.get(r.status or "", "") + (f" {r.note[:70]}" if r.note else "")
        t.add_row(r.target + (" (canary)" if r.canary else ""), f"{r.stage} {secs:.0f}s" if r.started else r.stage,
                  sent, f"{rate:.1f} MB/s" if rate else "", result or "…")
    return t


def run_with_board(action: str, run: Callable, *, as_json: bool):
    """Run `run(board)` (an api fleet function) with the live table on a terminal; print the summary; exit with the
    fleet's code."""
    from ..remote.fleet import Board

    board = Board()
    live = Live(get_renderable=lambda: board_table(board, f"{action}: in progress"), console=console_err,
                refresh_per_second=4, transient=True)
    if console_err.is_terminal and not as_json:
        with live:
            result = run(board)
    else:
        result = run(board)
    if as_json:
        print_json(result)
    else:
        print_summary(result)
    finish(result)
    return result


def _detail(action: str, o) -> str:
    r = o.result or {}
    if o.status != "ok":
        return " — ".join(x for x in (o.error, o.note) if x)
    if action == "deploy":
        how = "switched" if r.get("switched") else "already current"
        return (f"release {r.get('release_id')} {how}; sent {r.get('files_sent')} of {r.get('files_total')} files "
                f"({_mb(r.get('bytes_sent'))} of {_mb(r.get('bytes_total'))})")
    if action == "bench":
        b = (r.get("batches") or [{}])[0]
        p50 = (b.get("latency_ms") or {}).get("p50")
        return f"p50 {p50:.4g} ms (batch {b.get('batch')}, {b.get('inputs')} inputs)" if p50 else "measured"
    if action == "rollback":
        return f"current {r.get('previous_release')} -> {r.get('release_id')}"
    if action == "check":
        return "; ".join(r.get("warnings") or []) or "matches its profile"
    if action == "calibrate":
        return f"{len(r.get('fits') or [])} fitted efficiencies for {r.get('profile')}"
    return ""


def print_summary(result) -> None:
    n_ok = sum(1 for o in result.targets if o.status == "ok")
    where = f" fleet {result.fleet}" if result.fleet else ""
    t = Table(title=f"{result.action} on{where} {len(result.targets)} device(s): {n_ok} ok, "
                    f"{len(result.targets) - n_ok} not — {result.seconds:g} s, {result.parallel} at once"
                    + (f", {result.canary} canary" if result.canary else ""))
    for col in ("target", "result", "exit", "stage", "seconds", "detail"):
        t.add_column(col, justify="right" if col in ("exit", "seconds") else "left")
    for o in result.targets:
        t.add_row(o.target + (" (canary)" if o.canary else ""), _STATUS[o.status], str(o.exit_code), o.stage,
                  f"{o.seconds:g}", _detail(result.action, o))
    console.print(t)
    if result.stopped:
        console.print(f"[red]rollout stopped:[/red] {result.stopped}", soft_wrap=True)
    if result.action == "bench" and n_ok:
        note("each device's result is saved under its own results/<target>/ directory; `edge-sdk report` shows "
             "them all (and their spread where devices share a profile)")


def finish(result) -> None:
    """Exit with the fleet's code: 0, 8 (some failed), or the code every device failed with."""
    from ..errors import FleetError

    if result.exit_code == 0:
        return
    bad = result.failed()
    names = ", ".join(f"{o.target} ({o.status})" for o in bad[:8]) + (" …" if len(bad) > 8 else "")
    raise FleetError(f"{len(bad)} of {len(result.targets)} device(s) did not succeed: {names}; see the summary",
                     exit_code=result.exit_code)
