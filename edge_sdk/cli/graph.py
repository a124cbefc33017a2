"""`edge-sdk graph`: make (or read from the cache) the op graph of a model — the artifact `report` reads."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import JsonOpt, app, console, console_err, note, print_json, user_errors


@app.command("graph")
@user_errors
def graph_cmd(
    model: str = typer.Argument("minilm", help="minilm, a HF model dir, a config.json or an ONNX file"),
    seq_len: int = typer.Option(128, "--seq-len", min=1, help="Sequence length of the fixed-shape graphs"),
    tflite: str = typer.Option("auto", "--tflite", help="auto: also convert to LiteRT and read the real builtin ops "
                                                        "(when the converter env exists); map: ONNX only"),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Where graphs are kept (default "
                                                                      "$EDGE_SDK_CACHE/graphs or ~/.cache/edge-sdk)"),
    refresh: bool = typer.Option(False, "--refresh", help="Make it again even when the cache has it"),
    as_json: bool = JsonOpt,
) -> None:
    """Export MODEL once and record its operators (ONNX, fixed-shape ONNX, LiteRT builtins); cached."""
    from ..opgraph import make_graph

    with console_err.status("making the op graph…") as status:
        def progress(line: str) -> None:
            console_err.print(f"[dim]{line}[/dim]", highlight=False)
            status.update(line[:100])

        g, where = make_graph(model, seq_len=seq_len, tflite=tflite, cache_dir=cache_dir, refresh=refresh,
                              progress=progress)
    if as_json:
        print_json(g)
        return
    i = g.info
    console.print(f"[bold]{g.model_name}[/bold] at sequence {g.seq_len}: {i.status}, {i.nodes} nodes, opset "
                  f"{i.opset}, exporter {i.exporter or '-'}")
    console.print("  ONNX ops: " + ", ".join(f"{o.op} {o.count}" for o in i.ops[:12])
                  + (" …" if len(i.ops) > 12 else ""))
    if g.ort_cpu is not None:
        ok = "session created" if g.ort_cpu.session_created else f"session fails: {g.ort_cpu.error}"
        console.print(f"  onnxruntime {g.ort_cpu.onnxruntime_version} CPU: {ok}")
    if g.tflite is not None:
        console.print(f"  LiteRT builtins ({len(g.tflite.ops)} ops, converted): "
                      + ", ".join(sorted(set(g.tflite.ops))))
    else:
        console.print(f"  LiteRT: not converted ({g.tflite_why})")
    console.print(f"  {i.note}")
    note(f"saved in {where} (edge-sdk report reads it)")
