"""`edge-sdk build` and `edge-sdk bundle verify|show`."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import JsonOpt, ProfilesDirOpt, app, console, console_err, print_json, user_errors

bundle_app = typer.Typer(help="Inspect and verify bundles (directories or .edgepkg archives).", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@app.command("build")
@user_errors
def build_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="minilm, a HF model dir or a config.json "
                                                                    "(default: the plan's model, else minilm)"),
    device: str = typer.Option("host", "--device", "-d", help="Profile to plan for (ignored with --plan)"),
    output: str = typer.Option("out/bundle", "-o", "--output", help="Bundle directory (an .edgepkg is written "
                                                                    "beside it)"),
    plan_file: Optional[str] = typer.Option(None, "--plan", help="Plan JSON from `edge-sdk plan -o`"),
    max_quality_drop: Optional[float] = typer.Option(None, "--max-quality-drop",
                                                     help="Max measured drop vs the original (default 0.02): 1 - "
                                                          "cosine; classifiers 1 - top-1 agreement; with "
                                                          "--task-data 1 - retained task accuracy"),
    eval_data: Optional[list[str]] = typer.Option(
        None, "--eval-data", metavar="FILE",
        help="Text file, one input per line; vision: image files (repeat the flag), a directory of them, or "
             ".npy/.npz [N,C,H,W] / [N,H,W]"),
    task_data: Optional[str] = typer.Option(
        None, "--task-data", metavar="FILE",
        help="Labelled data (.npz inputs+labels; text: .tsv / .jsonl): gate on task accuracy retained (classifier "
             "argmax, or a linear probe on embeddings)"),
    eval_samples: Optional[int] = typer.Option(None, "--eval-samples", min=1, help="Use N of the eval inputs"),
    calibration_data: Optional[str] = typer.Option(None, "--calibration-data",
                                                   help="Unlabeled text (vision: images, .npy/.npz) for "
                                                        "calibration and recovery"),
    distill_steps: Optional[int] = typer.Option(None, "--distill-steps", min=0, help="Recovery budget (steps)"),
    distill_seconds: Optional[float] = typer.Option(None, "--distill-seconds", min=1, help="Recovery budget (s)"),
    recovery_minutes: Optional[float] = typer.Option(
        None, "--recovery-minutes", min=0, help="Recovery budget the plans are made for (default 5); with --plan, "
                                                "the plan's distill pass gets it"),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Only plans for this runtime (onnxruntime, litert)"),
    archive: bool = typer.Option(True, "--archive/--no-archive", help="Also write BUNDLE.edgepkg"),
    as_json: bool = JsonOpt,
    profiles_dir: Optional[list[str]] = ProfilesDirOpt,
) -> None:
    """Compress and export MODEL for a device, measure quality, and write a verifiable bundle."""
    from .. import api
    from ..planner import load_plan
    from ..reporting.svg import fmt_mb

    plan = load_plan(plan_file) if plan_file else None
    with console_err.status("building…") as status:
        def progress(line: str) -> None:
            console_err.print(f"[dim]{line}[/dim]", highlight=False)
            status.update(line[:100])

        res = api.build(model, device=device, out_dir=output, plan=plan, max_quality_drop=max_quality_drop,
                        eval_data=(eval_data[0] if len(eval_data) == 1 else eval_data) if eval_data else None,
                        task_data=task_data, eval_samples=eval_samples, calibration_data=calibration_data,
                        distill_steps=distill_steps, distill_seconds=distill_seconds, archive=archive,
                        progress=progress, profiles_dir=profiles_dir, runtime=runtime,
                        recovery_minutes=recovery_minutes)
    m = res.manifest
    if as_json:
        print_json(res)
        return
    q = m.quality
    console.print(f"[green]built[/green] {m.model_name} for {m.device}: {m.plan.summary()}")
    console.print(f"  artifact {m.primary.path} ({fmt_mb(m.artifact_bytes() / 1e6)}, "
                  f"{m.primary.runtime}/{m.primary.provider})")
    if q:
        console.print("  measured quality: " + ", ".join(f"{x.name} {x.value:.4f}" for x in q.metrics)
                      + f" on {q.eval_data}")
        if q.task:
            t = q.task
            refit = (f"; probe re-fitted on the compressed model {t.candidate_refit_accuracy:.4f}"
                     if t.candidate_refit_accuracy is not None else "")
            console.print(f"  task accuracy ({t.method.replace('_', ' ')}, {t.test_samples} test rows): "
                          f"{t.candidate_accuracy:.4f} vs {t.reference_accuracy:.4f} uncompressed, retained "
                          f"{t.retained:.4f}{refit}")
    for a in res.attempts:
        if not a.passed:
            console.print(f"  [yellow]rejected[/yellow] {a.plan}: {a.detail}")
    console.print(f"  bundle {res.path}" + (f", archive {res.archive}" if res.archive else "")
                  + f" ({res.seconds:.0f} s)")


@bundle_app.command("verify")
@user_errors
def bundle_verify(path: str, as_json: bool = JsonOpt) -> None:
    """Check the manifest schema and every file's sha256 (directory or .edgepkg). Exit 2 on any mismatch."""
    from ..bundle import bundle_id, verify_bundle

    m = verify_bundle(path)
    if as_json:
        print_json({"ok": True, "bundle_id": bundle_id(m.files), "files": len(m.files), "manifest": m})
        return
    console.print(f"[green]ok[/green] {path}: {len(m.files)} files verified, bundle id {bundle_id(m.files)}, "
                  f"{m.model_name} for {m.device} ({m.plan.summary()})")


@bundle_app.command("show")
@user_errors
def bundle_show(path: str, as_json: bool = JsonOpt) -> None:
    """Print a bundle's manifest (verifies it first)."""
    from ..bundle import verify_bundle

    m = verify_bundle(path)
    if as_json:
        print_json(m)
        return
    console.print(f"[bold]{m.model_name}[/bold] for {m.device}, built {m.created_at}")
    console.print(f"  plan: {m.plan.summary()}")
    for a in m.artifacts:
        console.print(f"  artifact {a.path}: {a.format} {a.precision} on {a.runtime}/{a.provider}; inputs "
                      + ", ".join(f"{t.name}{t.shape}" for t in a.inputs))
    if m.quality:
        console.print("  quality: " + ", ".join(f"{x.name} {x.value:.4f}" for x in m.quality.metrics))
    console.print("  versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items()))
