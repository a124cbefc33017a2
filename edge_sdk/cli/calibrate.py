"""`edge-sdk calibrate`: measure the cost model's efficiencies on this machine or a target (or fit them to published
results), save the Calibration, and show how well it fits."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import JsonOpt, ProfilesDirOpt, app, console, note, print_json, user_errors

CalibrationsOpt = typer.Option(None, "--calibrations", help="Directory of calibrations (default ./calibrations or "
                                                            "$EDGE_SDK_CALIBRATIONS)")
NoCalibrationOpt = typer.Option(False, "--no-calibration", help="Ignore saved calibrations: plan with the "
                                                                "profile's own efficiencies")


def print_calibration(cal) -> None:
    where = f"{cal.target} ({cal.fingerprint.describe()})" if cal.fingerprint else cal.target
    console.print(f"[bold]{cal.profile}[/bold] calibrated from {cal.source} on {where} in {cal.seconds:g} s"
                  + (f"; {cal.threads} thread(s)" if cal.threads else ""))
    if cal.memory_bandwidth_gbps:
        console.print(f"  measured memory bandwidth {cal.memory_bandwidth_gbps:.1f} GB/s (64 MiB add)")
    t = Table(title="fitted efficiencies (cost model: max(FLOPs/(peak·compute), bytes/(bw·memory)) + nodes·overhead "
                    "+ per call)")
    for c in ("runtime", "precision", "compute", "memory", "overhead µs/node", "µs/call", "fitted on", "held out",
              "held-out error median", "max"):
        t.add_column(c, justify="left" if c in ("runtime", "precision") else "right")
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    for f in cal.fits:
        e = f.efficiency
        t.add_row(f"{f.runtime}/{f.provider}", f.precision + (" (GEMM table)" if f.table_only else ""),
                  f"{e.compute:.3f}", f"{e.memory:.3f}",
                  f"{e.per_op_overhead_us:.3g}", f"{e.per_run_overhead_us:.3g}" if e.per_run_overhead_us else "-",
                  str(f.points), str(f.held_out), pct(f.fit_error_median),
                  pct(f.fit_error_max))
    if cal.fits:
        console.print(t)
    for f in cal.fits:
        if f.table_only:
            console.print(f"  {f.runtime} {f.precision}: {f.note}")
    for p in cal.published:
        tag = "reserved (validation)" if p.reserved_for_validation else ("fitted" if p.used_for_fit else "not used")
        loo = f", leave-one-out {p.leave_one_out_ms:.3g} ms" if p.leave_one_out_ms is not None else ""
        console.print(f"  {p.model} b{p.batch} s{p.seq_len} {p.precision} {p.runtime}: published {p.published_ms:.3g} "
                      f"ms, predicted {p.predicted_ms:.3g} ms (×{p.predicted_ms / p.published_ms:.2f}){loo} [{tag}]")
    for n in cal.notes:
        console.print(f"  [dim]{n}[/dim]")


@app.command("calibrate")
@user_errors
def calibrate_cmd(
    local: bool = typer.Option(False, "--local", help="Measure this machine (the live `host` profile)"),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Measure a deploy target (name or YAML)"),
    targets: Optional[str] = typer.Option(None, "--targets", help="Measure several targets: names, globs, tag:NAME"),
    fleet: Optional[str] = typer.Option(None, "--fleet", help="Measure every device of a fleet"),
    parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Devices measured at once (--targets/"
                                                                         "--fleet; default: the fleet's, else 4)"),
    from_published: Optional[str] = typer.Option(None, "--from-published", help="Fit a profile to the published "
                                                                                "results it carries"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Runtime threads (default: the runtime's)"),
    deadline: float = typer.Option(900.0, "--deadline", min=10, help="Seconds before the measurement is stopped"),
    quick: bool = typer.Option(False, "--quick", help="One short timing round per kernel instead of 3: under "
                                                      "half the time, noisier (a first look, a smoke test)"),
    calibrations: Optional[str] = CalibrationsOpt,
    targets_dir: Optional[list[str]] = typer.Option(None, "--targets-dir", help="Directory of target YAMLs"),
    accept_new_host_key: bool = typer.Option(False, "--accept-new-host-key", help="Trust an unknown host key once"),
    as_json: bool = JsonOpt,
    profiles_dir: Optional[list[str]] = ProfilesDirOpt,
) -> None:
    """Measure (or fit) the planner's efficiencies for a device and save them under calibrations/<target>/."""
    from .. import api
    from ..calibration import save_calibration
    from ..errors import InputError

    if sum(bool(x) for x in (local, target, from_published, targets or fleet)) != 1 or (targets and fleet):
        raise InputError("give exactly one of --local, --target T, --targets a,b,c, --fleet NAME or "
                         "--from-published PROFILE")
    if quick and from_published:
        raise InputError("--quick shortens the microbenchmarks; --from-published times nothing (leave out --quick)")
    if targets or fleet:
        from .fleet import run_with_board

        run_with_board("calibrate", lambda board: api.on_fleet(
            "calibrate", targets=targets, fleet=fleet, parallel=parallel, threads=threads, deadline_s=deadline,
            accept_new_host_key=accept_new_host_key, calibrations_dir=calibrations, targets_dirs=targets_dir,
            profiles_dir=profiles_dir, board=board, quick=quick), as_json=as_json)
        return
    cal = api.calibrate(local=local, target=target, from_published=from_published, threads=threads,
                        deadline_s=deadline, targets_dirs=targets_dir, accept_new_host_key=accept_new_host_key,
                        profiles_dir=profiles_dir, progress=note, quick=quick)
    path = save_calibration(cal, calibrations)
    if as_json:
        print_json(cal)
    else:
        print_calibration(cal)
    note(f"saved {path}; `edge-sdk plan`, `report` and `bench` use it from now on for {cal.profile} "
         f"(--no-calibration to ignore)")
