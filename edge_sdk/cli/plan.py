"""`edge-sdk plan`: pick pruning, precision, runtime and layout for a device, and explain why."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import JsonOpt, ProfilesDirOpt, app, console, note, print_json, user_errors
from .calibrate import CalibrationsOpt, NoCalibrationOpt


def _fmt_ms(x: float) -> str:
    return f"{x:.3g}"


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def generation_line(g) -> str:
    """A decoder plan's predicted TTFT and tokens/s, one line."""
    return (f"predicted generation: TTFT {_fmt_ms(g.ttft_ms)} ms for a {g.prompt_tokens}-token prompt "
            f"(prefill {_rate(g.prefill_tokens_per_s)} tokens/s), decode {_rate(g.decode_tokens_per_s)} tokens/s at "
            f"context {g.context}, peak memory {g.peak_memory_mb:.1f} MB")


def _print_planset(ps) -> None:
    from ..reporting.svg import fmt_mb

    console.print(f"[bold]{ps.model_name}[/bold] on [bold]{ps.device}[/bold] — objective {ps.objective}, "
                  f"{ps.candidates_considered} candidates costed")
    for i, p in enumerate(ps.plans, 1):
        pr = p.predicted
        m = pr.memory_mb
        console.print(f"\n[bold cyan]#{i}[/bold cyan] {p.summary()}")
        console.print(f"   predicted latency {_fmt_ms(pr.latency_ms)} ms"
                      + (" per generated token" if pr.generation else "")
                      + f", throughput {pr.throughput_per_s:.4g}/s, {pr.bound}-bound")
        if pr.generation:
            console.print("   " + generation_line(pr.generation))
        mem = f"   memory {m.total_mb:.1f} MB = weights {m.weights_mb:.1f} + activations {m.activations_mb:.1f}"
        if m.kv_cache_mb:
            mem += f" + KV {m.kv_cache_mb:.1f}"
        mem += f" + runtime {m.overhead_mb:.0f}"
        if not p.layout.is_single:
            mem += f"  (per device; {p.layout.world_size} devices)"
        console.print(mem)
        console.print(f"   artifact {fmt_mb(pr.size_mb)}; quality risk {pr.quality.risk} "
                      f"(est. cosine {pr.quality.expected_cosine:.3f}, an estimate)")
        console.print(f"   passes: {' → '.join(x.kind for x in p.passes)}")
        if p.layout.stages:
            st = ", ".join(f"[{s.first_layer}-{s.last_layer}] {s.predicted_ms:.3g} ms" for s in p.layout.stages)
            console.print(f"   stages: {st}")
        if i == 1:
            for k, v in p.rationale.items():
                console.print(f"   [dim]{k}:[/dim] {v}")
    if ps.pareto:
        t = Table(title="Pareto front (latency / size / est. quality drop)")
        for c in ("plan", "latency ms", "size MB", "est. drop"):
            t.add_column(c)
        for p in ps.pareto:
            t.add_row(p.summary(), _fmt_ms(p.predicted.latency_ms), f"{p.predicted.size_mb:.1f}",
                      f"{p.predicted.quality.cosine_drop:.3f}")
        console.print(t)
    if ps.rejected:
        console.print("[bold]Rejected[/bold]")
        for r in ps.rejected:
            alts = ", ".join(r.alternatives[:4]) + (" …" if len(r.alternatives) > 4 else "")
            console.print(f"  • {r.reason}: [dim]{alts}[/dim]")


@app.command("plan")
@user_errors
def plan_cmd(
    model: str = typer.Option("minilm", "--model", "-m", help="minilm, a HF model dir, a config.json or an ONNX file"),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Profile name or alias (e.g. jetson)"),
    devices: Optional[str] = typer.Option(None, "--devices", help="all | a class | comma-separated names"),
    batch: int = typer.Option(1, "--batch", min=1),
    seq_len: int = typer.Option(128, "--seq-len", min=1, help="Tokens (encoders) or context length (decoders)"),
    objective: str = typer.Option("latency", "--objective", help="latency | throughput | size | quality"),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="Max predicted latency"),
    max_size_mb: Optional[float] = typer.Option(None, "--max-size-mb", help="Max artifact size"),
    max_quality_drop: float = typer.Option(0.02, "--max-quality-drop", help="Max est. embedding cosine drop"),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Only this runtime (onnxruntime, litert, "
                                                                 "tensorrt) or provider"),
    top: int = typer.Option(3, "--top", min=1),
    recovery_minutes: Optional[float] = typer.Option(
        None, "--recovery-minutes", min=0, help="Distillation a pruned plan gets (default 5; more recovery lets the "
                                                "planner prune harder; part of the plan)"),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write the best Plan JSON here"),
    no_calibration: bool = NoCalibrationOpt,
    calibrations: Optional[str] = CalibrationsOpt,
    as_json: bool = JsonOpt,
    profiles_dir: Optional[list[str]] = ProfilesDirOpt,
) -> None:
    """Plan how to fit MODEL on a device (or every device with --devices)."""
    from .. import api
    from ..artifacts import check_output_path
    from ..errors import InputError
    from ..planner import OBJECTIVES, save_plan

    if output:  # before planning: a path that cannot be written is refused first, not after the work
        check_output_path(output)
    if device and devices:
        raise InputError("pass either --device or --devices, not both")
    if objective not in OBJECTIVES:
        raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    kw = dict(batch=batch, seq_len=seq_len, objective=objective, latency_ms=latency_ms, max_size_mb=max_size_mb,
              max_quality_drop=max_quality_drop, runtime=runtime, top=top, profiles_dir=profiles_dir,
              calibration=not no_calibration, calibrations_dir=calibrations, recovery_minutes=recovery_minutes)
    if devices:
        _print_many(api.plan_devices(model, devices, **kw), objective, as_json)
        return
    if device is None:
        note("no --device given: planning for 'host' (this machine's kind of CPU)")
    ps = api.plan(model, device or "host", **kw)
    for line in ([ps.device_note] if ps.device_note else []) + ([ps.calibration] if ps.calibration else []) \
            + ps.notes:
        note(line)
    if output:
        save_plan(ps.best, output)
        note(f"best plan written to {output} (edge-sdk build --plan {output})")
    if as_json:
        print_json(ps)
    else:
        _print_planset(ps)


def _print_many(rows, objective: str, as_json: bool) -> None:
    from ..errors import InfeasibleError

    name = next((r.model_name for _, r in rows if not isinstance(r, Exception)), None)
    if as_json:
        print_json({"model": name, "devices": [
            {"device": p.name, "device_class": p.device_class.value, "feasible": not isinstance(r, Exception),
             **({"plans": [x.model_dump(mode="json") for x in r.plans]} if not isinstance(r, Exception)
                else {"reason": str(r)})} for p, r in rows]})
        return
    for prof, r in rows:
        if not isinstance(r, Exception):
            for line in ([r.calibration] if r.calibration else []) + r.notes:
                note(f"{prof.name}: {line}")
    t = Table(title=f"{name or 'the model'}: best plan per device (objective {objective})")
    for c in ("device", "class", "plan", "latency ms", "memory MB", "size MB", "est. drop"):
        t.add_column(c)
    for prof, r in rows:
        if isinstance(r, Exception):
            t.add_row(prof.name, prof.device_class.value, f"[red]infeasible[/red]: {str(r).split(': ', 1)[-1]}",
                      "-", "-", "-", "-")
            continue
        p = r.plans[0]
        t.add_row(prof.name, prof.device_class.value, p.summary(), _fmt_ms(p.predicted.latency_ms),
                  f"{p.predicted.memory_mb.total_mb:.0f}", f"{p.predicted.size_mb:.1f}",
                  f"{p.predicted.quality.cosine_drop:.3f}")
    console.print(t)
    if all(isinstance(r, Exception) for _, r in rows):
        raise InfeasibleError("no selected device can run the model (see the table)")
