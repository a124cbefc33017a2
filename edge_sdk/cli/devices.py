"""`edge-sdk devices ...`: list, show, validate profiles and print their JSON Schema."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from ._common import JsonOpt, ProfilesDirOpt, app, console, console_err, note, print_json, registry, \
    user_errors

devices_app = typer.Typer(help="List, show and validate device profiles.", invoke_without_command=True,
                          no_args_is_help=False)
app.add_typer(devices_app, name="devices")


def _peak(p, prec: str) -> str:
    v = p.peak_tops(prec)
    return f"{v:g}" if v else "-"


@devices_app.callback()
@user_errors
def devices_list(ctx: typer.Context,
                 as_json: bool = JsonOpt,
                 device_class: Optional[str] = typer.Option(None, "--class", help="mobile|embedded|automotive|server|host"),
                 profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """List device profiles (table, or --json)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"profiles_dir": profiles_dir}
        return
    reg = registry(profiles_dir)
    profs = reg.select(device_class) if device_class else list(reg.profiles.values())
    if as_json:
        print_json(profs)
        return
    t = Table(title=f"{len(profs)} device profiles")
    for col in ("name", "class", "memory GB (usable)", "BW GB/s", "int8 TOPS", "fp16 TFLOPS", "runtimes"):
        t.add_column(col)
    for p in profs:
        rts = ", ".join(sorted({f"{r.name}:{r.provider}" for r in p.runtimes}))
        acc = f" x{p.accelerator_count}" if p.accelerator_count > 1 else ""
        t.add_row(p.name, p.device_class.value, f"{p.memory_total_gb:g} ({p.memory_usable_gb:g}){acc}",
                  f"{p.memory_bandwidth_gbps:g}", _peak(p, "int8"), _peak(p, "fp16"), rts)
    console.print(t)


@devices_app.command("show")
@user_errors
def devices_show(ctx: typer.Context, name: str, as_json: bool = JsonOpt,
                 profiles_dir: Optional[list[str]] = ProfilesDirOpt) -> None:
    """Show one profile in full (name or alias)."""
    reg = registry(profiles_dir or (ctx.obj or {}).get("profiles_dir"))
    prof, how = reg.resolve(name)
    if how:
        note(how)
    if as_json:
        print_json(prof)
        return
    import yaml

    facts = reg.detected.get(prof.name)
    origin = (f"detected live, over the fallback {reg.origin[prof.name]} (EDGE_SDK_HOST_PROFILE=static for that "
              f"file as it is)" if facts else reg.origin[prof.name])
    console.print(f"[bold]{prof.display_name}[/bold] ({prof.name}, {prof.device_class.value}) — {origin}")
    if facts:
        console.print("[bold]detected[/bold] on this machine:")
        for k, v in facts.fields().items():
            console.print(f"  {k}: {v}")
        console.print("  from host.yaml (not detectable here): memory_bandwidth_gbps, efficiencies, runtimes")
    console.print(yaml.safe_dump(prof.model_dump(mode="json", exclude_none=True), sort_keys=False, width=110,
                                 allow_unicode=True))


@devices_app.command("validate")
@user_errors
def devices_validate(files: list[str] = typer.Argument(..., help="Profile YAML files, or directories of them")) -> None:
    """Validate profile files (a directory: every .yaml/.yml in it); lists every problem with its file and line.
    Exit 2 when any file has one."""
    from pathlib import Path

    from ..errors import InputError
    from ..profiles.loader import check_profile_file

    paths: list[Path] = []
    for f in map(Path, files):
        if f.is_dir():
            found = sorted(p for p in f.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise InputError(f"{f}: no .yaml/.yml profile files in this directory")
            paths += found
        else:
            paths.append(f)
    seen: dict[str, Path] = {}
    problems: list[str] = []
    bad_files = 0
    for f in paths:
        try:
            prof, found_problems = check_profile_file(f)
        except InputError as exc:  # unreadable or not YAML: one problem for this file, keep checking the others
            prof, found_problems = None, [str(exc)]
        if prof is not None and prof.name in seen:
            found_problems = [f"{f}: field 'name': duplicate profile name '{prof.name}' (also in {seen[prof.name]})"]
        if found_problems:
            bad_files += 1
            problems += found_problems
            continue
        seen[prof.name] = f
        console.print(f"[green]ok[/green] {f}: {prof.name} ({prof.device_class.value})")
    if len(problems) == 1:
        raise InputError(problems[0])
    if problems:
        for line in problems:
            console_err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        raise InputError(f"{len(problems)} problems in {bad_files} of {len(paths)} profile file(s)")


@devices_app.command("schema")
def devices_schema() -> None:
    """Print the DeviceProfile JSON Schema."""
    from ..profiles import DeviceProfile

    print(json.dumps(DeviceProfile.model_json_schema(), indent=2))
