"""`edge-sdk bench`: run a bundle's runner here (--local) or on a target, print the stats next to the prediction."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import JsonOpt, app, console, note, print_json, user_errors
from .calibrate import CalibrationsOpt, NoCalibrationOpt
from .fleet import FleetOpt, ParallelOpt, TargetsOpt, run_with_board, wants_fleet


def _batches(text: str) -> list[int]:
    from ..errors import InputError

    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(b < 1 for b in sizes):
        raise InputError(f"--batch: expected comma-separated positive integers like 1,8; got {text!r}")
    return sizes


def _settings(**kw):
    from pydantic import ValidationError

    from ..benchmark import BenchSettings
    from ..errors import InputError

    if kw["iterations"] is not None and kw["duration_s"] is not None:
        raise InputError("--iterations and --duration exclude each other; give one")
    try:
        return BenchSettings(**kw)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = {"duration_s": "duration", "timeout_s": "timeout", "batches": "batch",
                "profile_iterations": "profile-iterations", "new_tokens": "new-tokens",
                "prompt_tokens": "prompt-tokens"}.get(str(err["loc"][0]), str(err["loc"][0]))
        raise InputError(f"--{flag}: {err['msg']} (got {err.get('input')!r})") from None


def _prompt_tokens(text: str | None) -> int | str | None:
    from ..errors import InputError

    if text is None or text == "max":
        return text
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--prompt-tokens: expected a number of tokens or 'max', got {text!r}") from None


def _ms(x: float) -> str:
    return f"{x:.4g}"


def _print_result(r) -> None:
    from ..schemas.bench import input_label

    where = r.target if r.target != "local" else f"local ({r.host})" if r.host else "local"
    threads = f"{r.threads} thread(s)" if r.threads else "default threads"
    console.print(f"[bold]{r.model_name or r.model}[/bold] ({r.artifact}, {r.precision}) on [bold]{where}[/bold] — "
                  f"{r.runtime} {r.runtime_version} ({r.runtime_module}), {r.provider_used}, {threads}, "
                  f"{r.cpu_model or r.arch}")
    if r.fell_back:
        console.print(f"[bold red]fallback:[/bold red] asked for {r.provider_requested}, ran on {r.provider_used}"
                      + (f" — {r.fallback_reason}" if r.fallback_reason else ""))
    mode = f"{r.iterations} iterations" if r.iterations else f"{r.duration_s:g}s"
    t = Table(title=f"latency ms (measured; {r.warmup} warm-up runs, {mode} per row)")
    for col in ("inputs", "batch", "shape", "iters", "mean", "p50", "p90", "p95", "p99", "min", "max", "std",
                "items/s"):
        t.add_column(col, justify="left" if col in ("inputs", "shape") else "right")
    for b in r.batches:
        s = b.latency_ms
        shape = "x".join(str(d) for d in next(iter(b.shapes.values()), []))
        t.add_row(input_label(b.inputs, b.shapes), str(b.batch), shape, str(b.iterations), _ms(s.mean), _ms(s.p50),
                  _ms(s.p90), _ms(s.p95), _ms(s.p99), _ms(s.min), _ms(s.max), _ms(s.std), f"{b.throughput_per_s:.4g}")
    console.print(t)
    for b in r.batches:
        extra = []
        if b.p50_ci95_ms:
            extra.append(f"p50 95 % CI {_ms(b.p50_ci95_ms[0])}–{_ms(b.p50_ci95_ms[1])} ms (order statistics)")
        if b.rounds:
            rel = f", spread {100 * b.rounds.relative:.1f} %" if b.rounds.relative is not None else ""
            extra.append(f"{len(b.rounds.p50s_ms)} rounds: p50 min {_ms(b.rounds.min_ms)} / median "
                         f"{_ms(b.rounds.median_ms)} / max {_ms(b.rounds.max_ms)} ms{rel}")
        if extra:
            console.print(f"  {input_label(b.inputs, b.shapes)} batch {b.batch}: " + "; ".join(extra))
    for s in r.skipped:
        console.print(f"[yellow]skipped[/yellow] {s.inputs} batch {s.batch}: {s.reason}")
    rss = f"{r.peak_rss_mb:.1f} MB ({r.peak_rss_source})" if r.peak_rss_mb is not None else "unknown"
    console.print(f"model load {_ms(r.model_load_ms)} ms · first inference {_ms(r.first_inference_ms)} ms · "
                  f"peak RSS {rss}")
    if r.generation:  # decoder bundles
        g = r.generation
        console.print(f"generation ({g.engine}, greedy, {g.generations} × {g.new_tokens} new tokens after a "
                      f"{g.prompt_tokens}-token prompt): time to first token [bold]{_ms(g.ttft_ms)} ms[/bold] · "
                      f"decode [bold]{g.decode_tokens_per_s or 0:.4g} tokens/s[/bold] · prefill "
                      f"{g.prefill_tokens_per_s or 0:.4g} tokens/s · per-request setup {_ms(g.setup_ms)} ms")
        from ..reporting import decoder_pm_lines

        if r.predicted_generation is None:
            console.print("[dim]  the bundle's plan has no generation prediction (planned by an older edge-sdk)[/dim]")
        else:
            for line in decoder_pm_lines(r.predicted_generation, r):
                console.print(f"  {line}")
        if g.energy_mj_per_token is not None:
            console.print(f"energy {g.energy_mj_per_token:.4g} mJ per decoded token at a mean {g.power_mw_mean:.0f} mW")
    if r.tegrastats:
        ts = r.tegrastats
        power = (f"{ts.power_rail} mean {ts.power_mw_mean:.0f} mW, max {ts.power_mw_max:.0f} mW"
                 if ts.power_rail else "no input rail")
        temps = ", ".join(f"{k} {v:.1f}C" for k, v in sorted(ts.temperatures_c_max.items()))
        console.print(f"tegrastats ({ts.samples} samples): {power}; max temperatures {temps or '-'}")
    _print_machine(r)
    _print_op_profile(r)
    if r.prediction_basis and r.predicted_latency_ms is not None:
        console.print(f"[dim]prediction: {r.prediction_basis}[/dim]")
    if r.predicted_latency_ms is None:
        console.print("[dim]the bundle's plan has no latency prediction to compare with[/dim]")
    elif r.predicted_over_measured is None:
        console.print(f"predicted {_ms(r.predicted_latency_ms)} ms ({r.predicted_for}); no measured batch size "
                      f"matches it")
    else:
        ratio = r.predicted_over_measured
        verdict = "faster than predicted" if ratio > 1 else "slower than predicted"
        console.print(f"predicted {_ms(r.predicted_latency_ms)} ms ({r.predicted_for}) vs measured "
                      f"{r.compared_with}: predicted/measured = [bold]{ratio:.3g}[/bold] ({verdict})")


def _print_machine(r) -> None:
    m = r.machine
    if m is None:
        return
    load = "/".join(f"{x:.2f}" for x in m.load_avg_before) if m.load_avg_before else "unknown"
    govs = "/".join(sorted(set(m.governors.values()))) if m.governors else "unknown"
    clocks = (f"{min(m.cur_mhz.values()):.0f}–{max(m.cur_mhz.values()):.0f} MHz" if m.cur_mhz else "unknown")
    temps = ", ".join(f"{z.type or z.zone} {z.temp_c:.0f}C" for z in (m.thermal_before or []) if z.temp_c is not None)
    console.print(f"machine before the run: load {load} on {m.cpu_count} cores · governor {govs} · clocks {clocks}"
                  f" · temperatures {temps or 'unknown'}")
    for n in m.notes:
        console.print(f"[dim]  {n}[/dim]")
    p = m.reference_probe
    if p is not None and p.ms:
        after = f", {p.after_ms:.3f} ms after" if p.after_ms else ""
        against = (f": the faster {p.ratio:.2f}x its {p.calibrated_ms:.3f} ms in the calibration in use"
                   if p.ratio else " (no calibration with the same threads to compare with)")
        console.print(f"machine speed: the calibration's reference GEMM took {p.ms:.3f} ms before the run{after}"
                      f"{against}")
    elif p is not None and p.reason:
        console.print(f"[dim]  machine speed not probed: {p.reason}[/dim]")
    for w in r.warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {w}")


def _print_op_profile(r, top: int = 10) -> None:
    from ..schemas.bench import e2e_label

    op = r.op_profile
    if op is None:
        return
    if not op.available:
        console.print(f"[yellow]op profile unavailable ({op.runtime}):[/yellow] {op.unavailable_reason}")
        return
    t = Table(title=f"top {top} ops by time (measured; {op.runtime} profiler, {op.iterations} profiled runs of "
                    f"{op.inputs} inputs, batch {op.batch})")
    for col in ("node", "op", "layer", "µs/run", "share"):
        t.add_column(col, justify="right" if col in ("µs/run", "share") else "left")
    for n in op.nodes[:top]:
        t.add_row(n.node, n.op_type or "?", n.layer, f"{n.per_run_us:.1f}", f"{100 * n.share:.1f} %")
    console.print(t)
    e2e = f"{_ms(op.end_to_end_ms)} ms" if op.end_to_end_ms else "unknown"
    ratio = f"{op.layer_sum_over_end_to_end:.2f}" if op.layer_sum_over_end_to_end is not None else "—"
    console.print(f"layer sum {_ms(op.layer_sum_ms or 0)} ms + (other) {_ms(op.other_ms or 0)} ms = kernel sum "
                  f"{_ms(op.node_sum_ms or 0)} ms per run; end-to-end p50 ({e2e_label(op.end_to_end_source)}) {e2e}: "
                  f"layer sum / end-to-end = [bold]{ratio}[/bold]; {op.mapping_note}")
    if op.run_ms and op.profiled_p50_ms and op.end_to_end_ms:
        console.print(f"inside the profiler a run took {_ms(op.run_ms)} ms (p50 {_ms(op.profiled_p50_ms)} ms, "
                      f"{op.profiled_p50_ms / op.end_to_end_ms:.2f}x the unprofiled p50: the profiler's own cost per "
                      f"kernel); kernels cover {100 * (op.node_sum_ms or 0) / op.run_ms:.0f} % of it")
    console.print(f"[dim]{op.note}; per-layer predicted vs measured: edge-sdk report, or --json. Predictions: "
                  f"{op.predicted_basis}[/dim]")


@app.command("bench")
@user_errors
def bench_cmd(
    target: Optional[str] = typer.Option(None, "--target", "-t",
                                         help="Deploy target (name or YAML file): benchmark its current release"),
    targets: Optional[str] = TargetsOpt,
    fleet: Optional[str] = FleetOpt,
    parallel: Optional[int] = ParallelOpt,
    local: bool = typer.Option(False, "--local", help="Benchmark --bundle on this machine"),
    bundle: Optional[str] = typer.Option(None, "--bundle", "-b",
                                         help="Bundle directory or .edgepkg. With --target: benchmark the release "
                                              "deployed from this bundle"),
    release: Optional[str] = typer.Option(None, "--release", help="With --target: release id (default: current)"),
    warmup: int = typer.Option(10, "--warmup", help="Untimed runs before each timed series"),
    iterations: Optional[int] = typer.Option(None, "--iterations", "-n", help="Timed runs per batch size (100)"),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds of timed runs per batch size"),
    batch: str = typer.Option("1", "--batch", help="Batch sizes, comma-separated, e.g. 1,8"),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime CPU threads (default: runtime's)"),
    inputs: str = typer.Option("auto", "--inputs",
                               help="Sample inputs: real | padded | all | auto (padded when the bundle has them)"),
    artifact: Optional[str] = typer.Option(None, "--artifact", help="Model file in the bundle (default: the plan's)"),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds before the runner is stopped"),
    repeat: int = typer.Option(1, "--repeat", help="Independent rounds, each with a fresh runtime session; prints "
                                                   "the spread of their medians"),
    profile_ops: bool = typer.Option(False, "--profile-ops", help="After the timed rounds, profile one pass with the "
                                                                  "runtime's op profiler: top ops, per-layer times, "
                                                                  "a chrome-trace and TensorBoard scalars"),
    profile_iterations: int = typer.Option(20, "--profile-iterations", help="Runs in the profiled pass"),
    new_tokens: Optional[int] = typer.Option(None, "--new-tokens", help="Decoder bundles: tokens generated per "
                                                                          "generation (default 32)"),
    prompt_tokens: Optional[str] = typer.Option(None, "--prompt-tokens",
                                                help="Decoder bundles: prompt length N (the bundle's prompt repeated "
                                                     "or cut to N), or 'max' (the context minus --new-tokens: "
                                                     "prefill at the plan's context length); default: the "
                                                     "bundle's prompt"),
    results_dir: str = typer.Option("results", "--results-dir", help="Where results/<target>/<UTC time>.json go"),
    targets_dir: Optional[list[str]] = typer.Option(None, "--targets-dir", help="Directory of target YAMLs"),
    no_calibration: bool = NoCalibrationOpt,
    calibrations: Optional[str] = CalibrationsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Benchmark a bundle: latency percentiles, throughput, load time, memory (and power on Jetson)."""
    from ..benchmark import bench_local, bench_remote, save_result
    from ..errors import InputError

    many = wants_fleet(target, targets, fleet)
    if local == (target is not None or many):
        raise InputError("give exactly one of --local (with --bundle), --target, or --targets/--fleet")
    if inputs not in ("auto", "real", "padded", "all"):
        raise InputError(f"--inputs: expected real, padded, all or auto; got {inputs!r}")
    settings = _settings(warmup=warmup, iterations=iterations, duration_s=duration, batches=_batches(batch),
                         threads=threads, inputs=inputs, artifact=artifact, timeout_s=timeout, repeat=repeat,
                         profile_ops=profile_ops, profile_iterations=profile_iterations, new_tokens=new_tokens,
                         prompt_tokens=_prompt_tokens(prompt_tokens))
    if many:
        if bundle is not None and release is not None:
            raise InputError("give --bundle or --release with --targets/--fleet, not both")
        from .. import api

        run_with_board("bench", lambda board: api.bench_fleet(
            targets=targets, fleet=fleet, parallel=parallel, settings=settings, release=release, bundle=bundle,
            results_dir=results_dir, targets_dirs=targets_dir, calibration=not no_calibration,
            calibrations_dir=calibrations, board=board), as_json=as_json)
        return
    if local:
        if bundle is None:
            raise InputError("--local needs --bundle PATH (a bundle directory or .edgepkg)")
        if release is not None:
            raise InputError("--release is for --target; --local benchmarks --bundle")
        result = bench_local(bundle, settings, calibration=not no_calibration, calibrations_dir=calibrations)
    else:
        if bundle is not None and release is not None:
            raise InputError("give --bundle or --release with --target, not both")
        result = bench_remote(target, release, settings, bundle=bundle, targets_dirs=targets_dir,
                              calibration=not no_calibration, calibrations_dir=calibrations)
    path = save_result(result, results_dir)
    if as_json:
        print_json(result)
    else:
        _print_result(result)
    for w in result.warnings if as_json else []:
        note(f"warning: {w}")
    note(f"saved {path}")
    if result.op_profile is not None and result.op_profile.available:
        stem = path.name[: -len(".json")]
        if result.op_profile.trace_file:
            note(f"trace (chrome://tracing, ui.perfetto.dev): {path.with_name(result.op_profile.trace_file)}")
        if result.op_profile.layers:
            note(f"TensorBoard scalars: tensorboard --logdir {path.with_name(stem + '.tb')}")
