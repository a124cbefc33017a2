"""`edge-sdk inspect MODEL`: what the model is made of (params, weight sizes, FLOPs, structure, per-layer table)."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from ._common import JsonOpt, ProfilesDirOpt, app, console, note, print_json, registry, user_errors

PRECISIONS = ("fp32", "fp16", "int8", "int4")


def _count(n: float) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:g}"


def _mb(n_bytes: float) -> str:
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:.2f} GB"
    if n_bytes >= 1e6:
        return f"{n_bytes / 1e6:.1f} MB"
    return f"{n_bytes / 1e3:.1f} KB"


def _flops(n: float) -> str:
    for div, unit in ((1e12, "TFLOPs"), (1e9, "GFLOPs"), (1e6, "MFLOPs"), (1e3, "KFLOPs")):
        if n >= div:
            return f"{n / div:,.2f} {unit}"
    return f"{n:g} FLOPs"


def footprint_rows(spec: Any, profiles: list[Any]) -> list[dict[str, Any]]:
    """Weights at each precision against each device's usable memory (weights only: activations/KV come on top)."""
    rows = []
    for p in profiles:
        usable = p.memory_usable_gb * 1e9
        row: dict[str, Any] = {"device": p.name, "memory_usable_gb": p.memory_usable_gb,
                               "accelerator_count": p.accelerator_count, "weights": {}}
        for prec in PRECISIONS:
            need = spec.weight_bytes(prec)
            fits = "yes" if need <= usable else ("sharded" if need <= usable * p.accelerator_count else "no")
            row["weights"][prec] = {"bytes": need, "fits": fits}
        rows.append(row)
    return rows


def _print_summary(spec: Any) -> None:
    t = spec.transformer
    head = f"[bold]{spec.name}[/bold]  ({spec.source_kind}: {spec.source})"
    console.print(head)
    arch = spec.architecture or ("ONNX graph" if spec.source_kind == "onnx" else "?")
    fam = t.family if t else "unrecognised architecture (generic walk)"
    console.print(f"{arch}, {fam}; batch {spec.batch} x {spec.seq_len} tokens; weights "
                  f"{'present' if spec.has_weights else 'absent (structure only)'}, stored as {spec.dtype}")
    tot = Table(title="Totals", show_header=False, title_justify="left")
    tot.add_column("what")
    tot.add_column("value", justify="right")
    tot.add_row("parameters", f"{spec.total_params:,} ({_count(spec.total_params)})")
    for prec in PRECISIONS:
        tot.add_row(f"weights {prec}", _mb(spec.weight_bytes(prec)))
    gemm_share = spec.gemm_flops / spec.total_flops * 100 if spec.total_flops else 0.0
    tot.add_row("compute per forward", f"{_flops(spec.total_flops)} ({gemm_share:.1f}% GEMM)")
    tot.add_row("activation peak (largest op output, fp32)", _mb(spec.peak_activation_bytes))
    if t is not None and t.family in ("decoder", "encoder-decoder"):
        tot.add_row(f"KV cache at {spec.seq_len} tokens, fp16", _mb(spec.kv_cache_bytes(spec.seq_len, 2)))
    console.print(tot)
    if t is not None:
        st = Table(title="Structure", show_header=False, title_justify="left")
        st.add_column("what")
        st.add_column("value", justify="right")
        st.add_row("model type", t.model_type)
        st.add_row("layers x hidden", f"{t.num_layers} x {t.hidden_size}")
        kv = f" ({t.num_kv_heads} KV, grouped-query)" if t.num_kv_heads != t.num_heads else ""
        st.add_row("attention heads x head dim", f"{t.num_heads}{kv} x {t.head_dim}")
        st.add_row("FFN width", f"{t.ffn_size}{' (gated)' if t.gated_ffn else ''}")
        if t.vocab_size:
            st.add_row("vocabulary", f"{t.vocab_size:,}{' (tied LM head)' if t.tie_word_embeddings else ''}")
        if t.max_positions:
            st.add_row("max positions", str(t.max_positions))
        if t.image_size:
            st.add_row("image / patch / channels", f"{t.image_size} / {t.patch_size} / {t.num_channels}")
        console.print(st)
    by_kind = spec.params_by_kind()
    flops_by_kind: dict[str, int] = {}
    for layer in spec.layers:
        flops_by_kind[layer.kind] = flops_by_kind.get(layer.kind, 0) + layer.flops
    kt = Table(title="By layer kind", title_justify="left")
    for col in ("kind", "params", "FLOPs", "share of FLOPs"):
        kt.add_column(col, justify="left" if col == "kind" else "right")
    for kind in sorted(flops_by_kind, key=lambda k: -flops_by_kind[k]):
        share = flops_by_kind[kind] / spec.total_flops * 100 if spec.total_flops else 0.0
        kt.add_row(kind, _count(by_kind.get(kind, 0)), _flops(flops_by_kind[kind]), f"{share:.1f}%")
    console.print(kt)


def _print_layers(spec: Any) -> None:
    lt = Table(title=f"{len(spec.layers)} layers (forward order)", title_justify="left")
    for col in ("name", "kind", "block", "params", "MFLOPs", "out KB", "GEMM"):
        lt.add_column(col, justify="right" if col in ("block", "params", "MFLOPs", "out KB") else "left")
    for layer in spec.layers:
        tied = f" (tied: {layer.tied_to})" if layer.tied_to else ""
        lt.add_row(layer.name + tied, layer.kind, "" if layer.block is None else str(layer.block),
                   f"{layer.params:,}", f"{layer.flops / 1e6:,.2f}", f"{layer.activation_bytes / 1e3:,.1f}",
                   "yes" if layer.gemm else "")
    console.print(lt)


def _print_footprint(rows: list[dict[str, Any]]) -> None:
    ft = Table(title="Weights vs usable memory per device (weights only; activations and KV cache come on top)",
               title_justify="left")
    ft.add_column("device")
    ft.add_column("usable GB", justify="right")
    for prec in PRECISIONS:
        ft.add_column(prec, justify="right")
    mark = {"yes": "[green]fits[/green]", "sharded": "[yellow]sharded[/yellow]", "no": "[red]no[/red]"}
    for r in rows:
        n = r["accelerator_count"]
        usable = f"{r['memory_usable_gb']:g}" + (f" x{n}" if n > 1 else "")
        cells = [f"{_mb(r['weights'][p]['bytes'])} {mark[r['weights'][p]['fits']]}" for p in PRECISIONS]
        ft.add_row(r["device"], usable, *cells)
    console.print(ft)


@app.command("inspect")
@user_errors
def inspect_cmd(
    model: str = typer.Argument(..., help="minilm, a Hugging Face model directory, a config.json or an .onnx file"),
    batch: int = typer.Option(1, "--batch", help="Samples per forward"),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sample (default 128; vision models: "
                                                                  "set by the image size)"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Image side in pixels (vision models)"),
    as_json: bool = JsonOpt,
    show_layers: bool = typer.Option(False, "--layers", help="Also print the per-layer table"),
    devices: Optional[str] = typer.Option(None, "--devices", help="all | a device class | NAME[,NAME...]: weights "
                                                                  "vs usable memory per device"),
    profiles_dir: Optional[list[str]] = ProfilesDirOpt,
) -> None:
    """Inspect a model without loading its weights: params, weight sizes, FLOPs, structure, layers.

    --json prints the ModelSpec (with --devices: {"model": ModelSpec, "footprint": [...]}).
    """
    from ..modelspec import inspect_model

    spec = inspect_model(model, batch=batch, seq_len=seq_len, image_size=image_size)
    rows = footprint_rows(spec, registry(profiles_dir).select(devices)) if devices else None
    if as_json:
        print_json(spec if rows is None else {"model": spec, "footprint": rows})
        return
    for n in spec.notes:
        note(f"note: {n}")
    _print_summary(spec)
    if show_layers:
        _print_layers(spec)
    if rows is not None:
        _print_footprint(rows)
