"""`edge-sdk run-parallel`: run a plan's dp × tp × pp layout on torch.distributed and compare with the plan."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import JsonOpt, ProfilesDirOpt, app, console, note, print_json, user_errors


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _print_result(r) -> None:
    console.print(f"[bold]{r.model_name}[/bold]: dp={r.dp} × tp={r.tp} × pp={r.pp} on {r.backend}, "
                  f"{r.world_size} process(es) — batch {r.batch} × {r.seq_len} tokens, {r.microbatches} "
                  f"microbatch(es), {r.iterations} timed iteration(s)")
    t = Table(title="per stage: predicted (plan) vs measured (median compute time)")
    for c in ("stage", "layers", "ranks", "predicted ms", "measured ms", "measured CPU ms", "predicted share",
              "measured share"):
        t.add_column(c)
    for s in r.stages:
        t.add_row(str(s.index), f"{s.first_layer}-{s.last_layer}", ",".join(map(str, s.ranks)), _ms(s.predicted_ms),
                  _ms(s.measured_ms), _ms(s.measured_cpu_ms), _pct(s.predicted_share), _pct(s.measured_share))
    console.print(t)
    c = r.communication
    bits = []
    if r.tp > 1:
        bits.append(f"tp all-reduces {_ms(c.tp_allreduce_isolated_ms)} alone, {_ms(c.tp_allreduce_ms)} inside the "
                    f"forward incl. waiting for peers")
    if r.pp > 1:
        bits.append("pp hand-off " + ", ".join(_ms(h) for h in c.pp_handoff_ms) + " per boundary")
    if r.dp > 1:
        bits.append(f"dp gather {_ms(c.dp_gather_ms)}")
    console.print(f"communication: predicted {_ms(c.predicted_ms)} ms, measured {_ms(c.measured_ms)} ms"
                  + (f" ({'; '.join(bits)})" if bits else ""))
    console.print(f"latency: predicted {_ms(r.predicted_latency_ms)} ms, measured {_ms(r.measured_latency_ms)} ms "
                  f"(slowest rank's forward, median)")
    t = Table(title=f"per rank (the plan predicts {_ms(r.predicted_device_mb)} MB per device)")
    for col in ("rank", "dp", "pp", "tp", "device", "layers", "params MB", "RSS before model MB", "peak RSS MB",
                "GPU peak MB"):
        t.add_column(col)
    for k in r.ranks:
        t.add_row(str(k.rank), str(k.dp), str(k.pp), str(k.tp), f"{k.host}/{k.device}",
                  f"{k.first_layer}-{k.last_layer}", f"{k.params_mb:.2f}", f"{k.rss_before_model_mb:.0f}",
                  f"{k.peak_rss_mb:.0f}", "-" if k.cuda_peak_mb is None else f"{k.cuda_peak_mb:.0f}")
    console.print(t)
    if r.output is not None:
        o = r.output
        verdict = "[green]ok[/green]" if o.ok else "[red]EXCEEDED[/red]"
        console.print(f"output: {r.output_name} {o.shape}, max |parallel − single process| = {o.max_abs_diff:.3g} "
                      f"(tolerance {o.tolerance:g}: {verdict})")
    for n in r.notes:
        console.print(f"[dim]note: {n}[/dim]")


@app.command("run-parallel")
@user_errors
def run_parallel_cmd(
    plan_path: Optional[str] = typer.Option(None, "--plan", help="Plan JSON (from `edge-sdk plan -o`)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="minilm, a HF model dir or a config.json "
                                        "(default: the plan's model)"),
    layout: Optional[str] = typer.Option(None, "--layout", help="Force a layout instead of --plan: pp=2, tp=2, "
                                         "dp=2,pp=2, single"),
    stages: Optional[str] = typer.Option(None, "--stages", help="With --layout: inclusive layer ranges per stage, "
                                         "e.g. 0-0,1-5 (default: balanced by predicted time)"),
    device: str = typer.Option("host", "--device", "-d", help="With --layout: the profile to cost it for"),
    world_size: Optional[int] = typer.Option(None, "--world-size", help="Processes in all; must equal dp×tp×pp"),
    backend: str = typer.Option("gloo", "--backend", help="gloo (CPU) or nccl (one GPU per rank)"),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Default: the plan's (4 with --layout)"),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=1, help="Default: the plan's (32 with --layout)"),
    microbatches: Optional[int] = typer.Option(None, "--microbatches", min=1, help="GPipe microbatches per replica "
                                               "(default: gcd(replica batch, pp))"),
    iterations: int = typer.Option(3, "--iterations", min=1, help="Timed forwards"),
    warmup: int = typer.Option(1, "--warmup", min=0, help="Untimed forwards first"),
    seed: int = typer.Option(0, "--seed", min=0, help="Random weights (configs) and input ids"),
    timeout_s: float = typer.Option(120.0, "--timeout-s", help="Deadline for the whole run; a rank that dies or "
                                    "hangs fails the run by then, naming the rank"),
    tolerance: float = typer.Option(1e-4, "--tolerance", help="Max abs difference to the single-process output"),
    no_check: bool = typer.Option(False, "--no-check", help="Skip the single-process reference forward"),
    save_plan: Optional[str] = typer.Option(None, "--save-plan", help="With --layout: write the Plan here"),
    master_addr: str = typer.Option("127.0.0.1", "--master-addr", help="Address of node 0 (rank 0's store)"),
    master_port: Optional[int] = typer.Option(None, "--master-port", help="Default: a free port (single node)"),
    node_rank: int = typer.Option(0, "--node-rank", min=0),
    nnodes: int = typer.Option(1, "--nnodes", min=1),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads per rank (default: 1 when "
                                          "several ranks share this node, else torch's default; $OMP_NUM_THREADS)"),
    as_json: bool = JsonOpt,
    profiles_dir: Optional[list[str]] = ProfilesDirOpt,
) -> None:
    """Run a plan's parallel layout (data × tensor × pipeline) on torch.distributed; report per-stage times,
    per-rank memory, communication, and the difference to the single-process output."""
    from ..errors import InputError
    from ..parallel import Launch, ParallelRunError, layout_plan, parse_stages, run_plan
    from ..planner import load_plan, save_plan as write_plan

    if (plan_path is None) == (layout is None):
        raise InputError("give either --plan PLAN.json or --layout (e.g. --layout pp=2 with --model)")
    if stages is not None and layout is None:
        raise InputError("--stages goes with --layout (a plan file carries its own layout.stages)")
    if layout is not None:
        if model is None:
            raise InputError("--layout needs --model (minilm, a HF model dir or a config.json)")
        plan = layout_plan(model, layout, device=device, batch=batch or 4, seq_len=seq_len or 32,
                           stages=parse_stages(stages) if stages else None, profiles_dir=profiles_dir)
        if save_plan:
            write_plan(plan, save_plan)
            note(f"plan written to {save_plan}")
    else:
        plan = load_plan(plan_path)
    result = run_plan(plan, world_size=world_size, backend=backend, model=model, batch=batch, seq_len=seq_len,
                      microbatches=microbatches, iterations=iterations, warmup=warmup, seed=seed,
                      timeout_s=timeout_s, tolerance=tolerance, check_output=not no_check,
                      where=Launch(nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                                   master_port=master_port, threads=threads))
    if as_json:
        print_json(result)
    else:
        _print_result(result)
    if result.output is not None and not result.output.ok:
        raise ParallelRunError(f"the parallel output differs from the single-process output by "
                               f"{result.output.max_abs_diff:.3g} > --tolerance {tolerance:g}")
