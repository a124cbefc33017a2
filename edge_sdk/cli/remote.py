"""`edge-sdk targets [check|verify|releases]`, `edge-sdk deploy`, `edge-sdk rollback`: the SSH side, thin.

Exit codes: 2 bad input (target file, bundle, flags), 5 remote failure (connection, host key, auth, transfer,
a release that fails verification on the device), 1 when `targets check` ran but found contradictions.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import typer
from rich.table import Table

from ._common import JsonOpt, ProfilesDirOpt, app, console, console_err, note, print_json, registry, user_errors
from .fleet import FleetOpt, ParallelOpt, TargetsOpt, run_with_board, wants_fleet

TargetsDirOpt = typer.Option(None, "--targets-dir", help="Directory of target YAMLs (repeatable; default "
                                                         "$EDGE_SDK_TARGETS, else ./deploy_targets)")
OneTargetOpt = typer.Option(None, "--target", "-t", help="Target name (see `edge-sdk targets`) or path to a target YAML; "
                                                          "--targets/--fleet for several")
LockWaitOpt = typer.Option(300.0, "--lock-wait", min=0, help="Seconds to wait while another deploy to the same device "
                                                             "holds its lock (0: fail at once: 'already being deployed')")
AcceptNewOpt = typer.Option(False, "--accept-new-host-key",
                            help="Trust an UNKNOWN host key on first use and pin it in known_hosts (a CHANGED key "
                                 "is always refused)")

targets_app = typer.Typer(help="List, check and inspect SSH deploy targets.", invoke_without_command=True,
                          no_args_is_help=False)
app.add_typer(targets_app, name="targets")


def _target(name: str, targets_dir, profiles_dir):
    from ..remote import resolve_target

    return resolve_target(name, targets_dir, registry(profiles_dir))


def _host_key_note(fp: str | None, target) -> None:
    if fp:
        from ..remote import resolve_endpoint

        note(f"pinned new host key {fp} for {target.name} in {resolve_endpoint(target, check_files=False).known_hosts}")


@contextmanager
def _session(target, accept_new_host_key: bool):
    """A connected Session that says so when it pinned a new host key (trust on first use)."""
    from ..remote import connected

    with connected(target, accept_new_host_key=accept_new_host_key) as s:
        _host_key_note(s.accepted_host_key, target)
        yield s


@targets_app.callback()
@user_errors
def targets_list(ctx: typer.Context, as_json: bool = JsonOpt,
                 targets_dir: Optional[list[str]] = TargetsDirOpt,
                 profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """List deploy targets (table, or --json)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"targets_dir": targets_dir, "profiles_dir": profiles_dir}
        return
    from ..remote import load_targets, resolve_endpoint, targets_dirs

    dirs = targets_dirs(targets_dir)
    targets = list(load_targets(dirs, registry(profiles_dir)).values())
    if as_json:
        print_json([{**t.model_dump(mode="json"), "source": str(t.source)} for t in targets])
        return
    if not dirs:
        note("no targets directory: pass --targets-dir DIR or set $EDGE_SDK_TARGETS (or run where ./deploy_targets is)")
    t = Table(title=f"{len(targets)} deploy targets")
    for col in ("name", "endpoint", "profile", "tags", "workdir", "keep", "file"):
        t.add_column(col)
    for tg in targets:
        t.add_row(tg.name, str(resolve_endpoint(tg, check_files=False)), tg.profile, ",".join(tg.tags), tg.workdir,
                  str(tg.keep_releases), str(tg.source))
    console.print(t)


def _opts(ctx: typer.Context, targets_dir, profiles_dir):
    obj = ctx.obj or {}
    return targets_dir or obj.get("targets_dir"), profiles_dir or obj.get("profiles_dir")


@targets_app.command("check")
@user_errors
def targets_check(ctx: typer.Context, name: Optional[str] = typer.Argument(None, help="Target name or YAML path"),
                  targets: Optional[str] = TargetsOpt, fleet: Optional[str] = FleetOpt,
                  parallel: Optional[int] = ParallelOpt,
                  accept_new_host_key: bool = AcceptNewOpt, as_json: bool = JsonOpt,
                  bundle: Optional[str] = typer.Option(None, "--bundle", help="Also check that this decoder bundle "
                                                       "(directory or .edgepkg) fits the device's free memory now: "
                                                       "weights + KV cache at its context + runtime"),
                  targets_dir: Optional[list[str]] = TargetsDirOpt,
                  profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """Connect and compare the host with its device profile (arch, memory, python, numpy, runtimes, disk).

    Exit 0 when it fits, 1 when the profile contradicts the host (or --bundle does not fit), 5 when the host cannot
    be reached; with --targets/--fleet, 8 when some devices fail."""
    from ..errors import InputError
    from ..remote import check_target

    targets_dir, profiles_dir = _opts(ctx, targets_dir, profiles_dir)
    if wants_fleet(name, targets, fleet):
        from .. import api

        if bundle is not None:
            raise InputError("targets check --bundle: give one target NAME (deploy checks the memory of every "
                             "device of a fleet before it sends anything)")
        run_with_board("targets check", lambda board: api.on_fleet(
            "check", targets=targets, fleet=fleet, parallel=parallel, accept_new_host_key=accept_new_host_key,
            targets_dirs=targets_dir, profiles_dir=profiles_dir, board=board), as_json=as_json)
        return
    if name is None:
        raise InputError("targets check: give a target NAME, or --targets a,b,c / --fleet NAME")
    tg = _target(name, targets_dir, profiles_dir)
    prof, _ = registry(profiles_dir).resolve(tg.profile)
    if bundle is not None:
        from ..remote import open_bundle

        with open_bundle(bundle) as (_, manifest):
            res = check_target(tg, prof, accept_new_host_key=accept_new_host_key, manifest=manifest)
    else:
        res = check_target(tg, prof, accept_new_host_key=accept_new_host_key)
    _host_key_note(res.host_key_accepted, tg)
    if as_json:
        print_json(res)
    else:
        f = res.facts
        t = Table(title=f"{tg.name} ({res.endpoint}) vs profile {prof.name}", show_header=False)
        t.add_column("fact")
        t.add_column("value")
        gib = 1 << 30
        t.add_row("architecture", f"{f.arch} (profile: {prof.architecture})")
        t.add_row("os", f"{f.os} {f.kernel or ''}".strip())
        t.add_row("python", f"{f.python} ({f.python_executable})" if f.python else f"missing ({tg.python})")
        if f.mem_total_bytes:
            t.add_row("memory", f"{f.mem_total_bytes / gib:.1f} GiB total, {(f.mem_available_bytes or 0) / gib:.1f} "
                                f"GiB available (profile: {prof.memory_total_gb:g} GB)")
        if res.bundle_memory:
            t.add_row("bundle needs", res.bundle_memory)
        if f.disk_free_bytes is not None:
            t.add_row("disk free", f"{f.disk_free_bytes / gib:.1f} GiB at {f.disk_path}")
        for mod, ver in f.packages.items():
            t.add_row(mod, ver or "-")
        console.print(t)
        for p in res.problems:
            console.print(f"[red]problem:[/red] {p}")
        for w in res.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
        console.print("[green]ok[/green]" if res.ok else f"[red]{len(res.problems)} problem(s)[/red]")
    if not res.ok:
        raise typer.Exit(1)


@targets_app.command("verify")
@user_errors
def targets_verify(ctx: typer.Context, name: str = typer.Argument(..., help="Target name or YAML path"),
                   release: Optional[str] = typer.Option(None, "--release", help="Release id (default: current)"),
                   accept_new_host_key: bool = AcceptNewOpt, as_json: bool = JsonOpt,
                   targets_dir: Optional[list[str]] = TargetsDirOpt,
                   profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """Re-hash a release ON the device against its manifest; exit 5 if any file was modified or is missing."""
    from ..errors import RemoteError
    from ..remote import verify_release

    targets_dir, profiles_dir = _opts(ctx, targets_dir, profiles_dir)
    tg = _target(name, targets_dir, profiles_dir)
    with _session(tg, accept_new_host_key) as s:
        res = verify_release(tg, release=release, session=s)
    if as_json:
        print_json(res)
    elif res.ok:
        console.print(f"[green]ok[/green] release {res.release_id} on {tg.name}: {res.files} files match "
                      f"({res.path})" + (f"; extra files: {', '.join(res.extra[:5])}" if res.extra else ""))
    if not res.ok:
        what = res.error or "; ".join(x for x in (
            f"modified: {', '.join(res.mismatched[:5])}" if res.mismatched else "",
            f"missing: {', '.join(res.missing[:5])}" if res.missing else "",
            "" if res.id_matches else "manifest no longer matches the release id") if x)
        raise RemoteError(f"release {res.release_id} on {tg.name} failed verification ({what}); "
                          f"redeploy the bundle to repair it")


@targets_app.command("releases")
@user_errors
def targets_releases(ctx: typer.Context, name: str = typer.Argument(..., help="Target name or YAML path"),
                     accept_new_host_key: bool = AcceptNewOpt, as_json: bool = JsonOpt,
                     targets_dir: Optional[list[str]] = TargetsDirOpt,
                     profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """Releases on the device, which is current, and recent deploys/rollbacks."""
    from ..remote import release_status

    targets_dir, profiles_dir = _opts(ctx, targets_dir, profiles_dir)
    tg = _target(name, targets_dir, profiles_dir)
    with _session(tg, accept_new_host_key) as s:
        st = release_status(tg, session=s)
    if as_json:
        print_json(st)
        return
    t = Table(title=f"releases on {tg.name} ({st['workdir']})")
    for col in ("release", "current", "last activated"):
        t.add_column(col)
    for r in sorted(st["releases"], key=lambda r: st["activated"].get(r, ""), reverse=True):
        t.add_row(r, "*" if r == st["current"] else "", st["activated"].get(r, "-"))
    console.print(t)


def _progress(enabled: bool):
    """A transient per-file upload bar on stderr (only on a terminal, never in --json mode)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=console_err, transient=True, disable=not enabled)


@app.command("deploy")
@user_errors
def deploy_cmd(bundle: str = typer.Argument(..., help="Bundle directory or .edgepkg archive"),
               target: Optional[str] = OneTargetOpt, targets: Optional[str] = TargetsOpt,
               fleet: Optional[str] = FleetOpt, parallel: Optional[int] = ParallelOpt,
               canary: Optional[int] = typer.Option(None, "--canary", min=0, help="Fleets: deploy and health-check "
                                                    "this many devices first; a failure stops the rollout and "
                                                    "rolls them back"),
               max_unavailable: Optional[int] = typer.Option(None, "--max-unavailable", min=1, help="Fleets: at "
                                                             "most this many devices switching at once"),
               latency_budget_ms: Optional[float] = typer.Option(None, "--latency-budget-ms", min=0.0,
                                                                 help="Fleets: a canary slower than this (p50, "
                                                                      "batch 1) fails its health check"),
               lock_wait: float = LockWaitOpt, accept_new_host_key: bool = AcceptNewOpt,
               force: bool = typer.Option(False, "--force", help="Deploy even if the bundle was built for another "
                                                                 "device profile than the target's"),
               as_json: bool = JsonOpt, targets_dir: Optional[list[str]] = TargetsDirOpt,
               profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """Upload a bundle into a new release on the device, verify it there, switch `current` atomically.

    With --targets/--fleet: a rolling deploy (bundle verified once, --parallel devices at a time, --canary first)."""
    from ..errors import InputError
    from ..remote import deploy

    if wants_fleet(target, targets, fleet):
        from .. import api

        run_with_board("deploy", lambda board: api.deploy_fleet(
            bundle, targets=targets, fleet=fleet, parallel=parallel, canary=canary, max_unavailable=max_unavailable,
            latency_budget_ms=latency_budget_ms, accept_new_host_key=accept_new_host_key, force=force,
            lock_wait_s=lock_wait, targets_dirs=targets_dir, profiles_dir=profiles_dir, board=board),
            as_json=as_json)
        return
    if target is None:
        raise InputError("deploy: give --target NAME (one device), or --targets a,b,c / --fleet NAME")
    if canary is not None or max_unavailable is not None or latency_budget_ms is not None:
        raise InputError("--canary, --max-unavailable and --latency-budget-ms are for fleets (--targets/--fleet)")
    reg = registry(profiles_dir)
    tg = _target(target, targets_dir, profiles_dir)
    with _progress(not as_json and console_err.is_terminal) as prog:
        tasks: dict[str, int] = {}

        def on_progress(rel: str, done: int, total: int) -> None:
            if rel not in tasks:
                tasks[rel] = prog.add_task(rel, total=total)
            prog.update(tasks[rel], completed=done)

        rel = deploy(bundle, tg, accept_new_host_key=accept_new_host_key, registry=reg, force=force,
                     on_progress=on_progress, lock_wait_s=lock_wait,
                     on_stage=lambda stage, info: note(f"waiting: another deploy to {tg.name} is in progress "
                                                       f"({info.get('holder') or 'unknown'})")
                     if stage == "waiting" else None)
    _host_key_note(rel.host_key_accepted, tg)
    if as_json:
        print_json(rel)
        return
    mb = 1e6
    t = Table(title=f"release {rel.release_id} on {rel.target} ({rel.endpoint})", show_header=False)
    t.add_column("")
    t.add_column("")
    t.add_row("path", rel.path)
    t.add_row("current", f"{rel.current_link} -> {rel.release_id}" + ("" if rel.switched else " (already current)"))
    t.add_row("previous", rel.previous_release or "-")
    t.add_row("model", f"{rel.model_name} for {rel.device}")
    t.add_row("files", f"{rel.files_total} total: {rel.files_sent} sent, {rel.files_linked} reused from other "
                       f"releases, {rel.files_present} already there; {rel.verified_files} verified on the device")
    speed = f" at {rel.throughput_mb_s:g} MB/s" if rel.throughput_mb_s else ""
    t.add_row("bytes", f"{rel.bytes_sent / mb:.1f} of {rel.bytes_total / mb:.1f} MB sent in {rel.upload_seconds:g} s"
                       + speed)
    t.add_row("time", f"{rel.seconds:g} s")
    if rel.pruned:
        t.add_row("pruned", ", ".join(rel.pruned))
    console.print(t)


@app.command("rollback")
@user_errors
def rollback_cmd(target: Optional[str] = OneTargetOpt, targets: Optional[str] = TargetsOpt,
                 fleet: Optional[str] = FleetOpt, parallel: Optional[int] = ParallelOpt,
                 to: Optional[str] = typer.Option(None, "--to", help="Release id to switch to (default: the "
                                                                     "release deployed before the current one)"),
                 accept_new_host_key: bool = AcceptNewOpt, as_json: bool = JsonOpt,
                 targets_dir: Optional[list[str]] = TargetsDirOpt,
                 profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """Switch `current` back to the previous release (re-verified on the device first); on every device of
    --targets/--fleet."""
    from ..errors import InputError
    from ..remote import rollback

    if wants_fleet(target, targets, fleet):
        from .. import api

        run_with_board("rollback", lambda board: api.on_fleet(
            "rollback", targets=targets, fleet=fleet, parallel=parallel, to=to,
            accept_new_host_key=accept_new_host_key, targets_dirs=targets_dir, profiles_dir=profiles_dir,
            board=board), as_json=as_json)
        return
    if target is None:
        raise InputError("rollback: give --target NAME (one device), or --targets a,b,c / --fleet NAME")
    tg = _target(target, targets_dir, profiles_dir)
    with _session(tg, accept_new_host_key) as s:
        res = rollback(tg, to=to, session=s)
    if as_json:
        print_json(res)
        return
    console.print(f"[green]rolled back[/green] {tg.name}: current {res.previous_release} -> {res.release_id} "
                  f"({res.path}) in {res.seconds:g} s")
