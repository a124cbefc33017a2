"""`edge-sdk report`: per-device compatibility of one model — report.json, report.md and report.html."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import ProfilesDirOpt, app, console, note, user_errors
from .calibrate import CalibrationsOpt, NoCalibrationOpt


def _bundle_sha(bundle: str) -> str:
    """sha256 of a bundle's manifest.json: what BenchResult.bundle_sha256 records."""
    import hashlib
    from pathlib import Path

    from ..errors import InputError

    p = Path(bundle)
    manifest = p / "manifest.json" if p.is_dir() else p
    if not manifest.is_file():
        raise InputError(f"--bundle {bundle}: no manifest.json there (expected a bundle directory)")
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


@app.command("report")
@user_errors
def report_cmd(
    model: str = typer.Option("minilm", "--model", "-m", help="minilm, a HF model dir, a config.json or an ONNX file"),
    devices: str = typer.Option("all", "--devices", help="all | mobile | embedded | automotive | server | host | "
                                                         "comma-separated names"),
    output: str = typer.Option("out/report", "-o", "--output", help="Directory for report.json/.md/.html"),
    results: Optional[str] = typer.Option("results", "--results", help="Directory of BenchResult JSON files "
                                                                       "(results/<target>/*.json)"),
    bundle: Optional[str] = typer.Option(None, "--bundle", help="Only use results measured on this bundle"),
    pareto_device: Optional[str] = typer.Option(None, "--pareto-device", help="Device for the latency-quality "
                                                                              "Pareto chart (default host)"),
    batch: int = typer.Option(1, "--batch", min=1),
    seq_len: int = typer.Option(128, "--seq-len", min=1),
    objective: str = typer.Option("latency", "--objective", help="latency | throughput | size | quality"),
    max_quality_drop: float = typer.Option(0.02, "--max-quality-drop", help="Max est. embedding cosine drop"),
    tflite: str = typer.Option("auto", "--tflite", help="auto: convert to LiteRT and read the real ops when the "
                                                        "converter env exists (tens of seconds); map: map ONNX ops"),
    graph: Optional[str] = typer.Option(None, "--graph", help="OpGraph from `edge-sdk graph` (graph.json or its "
                                                              "directory); default: the graph cache, made if missing"),
    no_calibration: bool = NoCalibrationOpt,
    calibrations: Optional[str] = CalibrationsOpt,
    profiles_dir: Optional[list[str]] = ProfilesDirOpt,
) -> None:
    """Write a compatibility report of MODEL over device profiles and print the paths."""
    from .. import api
    from ..artifacts import check_output_path
    from ..opgraph import load_graph
    from ..reporting import write_report
    from ..reporting.generation import comparison_lines

    check_output_path(output, kind="dir")  # before the report's work, not after it
    sha = _bundle_sha(bundle) if bundle else None
    rep = api.report(model, devices=devices, results_dir=results, bundle_sha256=sha, batch=batch, seq_len=seq_len,
                     objective=objective, max_quality_drop=max_quality_drop, pareto_device=pareto_device,
                     profiles_dir=profiles_dir, tflite=tflite, graph=load_graph(graph) if graph else None,
                     progress=note, calibration=not no_calibration, calibrations_dir=calibrations)
    counts = {v: sum(d.verdict == v for d in rep.devices) for v in ("runs_as_is", "runs_with_plan", "cannot_run")}
    flagged = sum(bool(d.fallback_flags) for d in rep.devices)
    note(f"{rep.model_name}: {counts['runs_as_is']} run as is, {counts['runs_with_plan']} with a plan, "
         f"{counts['cannot_run']} cannot run; {flagged} with ops leaving the accelerator; "
         f"{len(rep.results_used)} results used, {len(rep.results_ignored)} ignored ({rep.seconds:.1f} s)")
    for d in rep.devices:  # decoders: TTFT, tokens/s and peak memory, P beside M
        for m in d.measured:
            if m.generation is not None:
                note(f"{d.device}: {m.file}")
                for line in comparison_lines(m.generation):
                    note(f"  {line}")
    paths = write_report(rep, output)
    for p in paths.values():
        console.print(str(p))
