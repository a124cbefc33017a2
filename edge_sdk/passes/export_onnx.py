"""How does a PyTorch encoder become a single, verified ONNX file?

Decisions (measured with torch 2.13 / onnxruntime 1.32 on this project's machine):

- Exporter: the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`, opset 17) by default. Both
  exporters match PyTorch to ~1e-6 on BERT, ViT and head-pruned BERT with a *different number of heads per
  layer* (the tracer records each layer's own reshape sizes), but the TorchScript one exports a tiny BERT in
  0.4 s instead of 3.4 s and its graph is the one onnxruntime's transformer optimizer recognises (on the dynamo
  graph it fuses no SkipLayerNormalization and no Attention). `exporter="dynamo"` stays available for the
  day the TorchScript exporter is removed.
- What the graph computes: see `arch/outputs.py` — text encoders output `last_hidden_state` and the
  mean-pooled, L2-normalised `embeddings`; ViT outputs `last_hidden_state` and the normalised CLS token as
  `embeddings`; classifiers output `logits`. Pooling lives in the graph so the device needs no pooling code.
- Inputs: `input_ids`, `attention_mask`, and `token_type_ids` only when the model's forward takes them and the
  tokenizer produces them; `pixel_values` for vision. Batch and sequence axes are dynamic (vision: batch).
- One file, weights inside (a bundle ships one model file); models over protobuf's 2 GB limit are refused.
- Verified, not trusted: after export the file is run in onnxruntime on inputs of two shapes *different from the
  export sample* (so a baked-in shape fails) with padding in one row (so an ignored attention mask fails), and
  compared with PyTorch. Tolerance: max |onnx − torch| <= 1e-4 × max(1, max |torch|) per output.
- `optimize=True`: onnxruntime.transformers.optimizer fuses SkipLayerNormalization, BiasGelu, and — only when the
  model is exported with eager attention and told the head count — Attention and EmbedLayerNormalization. The
  head count is one number for the whole graph, so for models whose layers have different head counts
  (pruned) Attention is left unfused. The fused graph is verified like the plain one; if it fails, the plain
  graph is kept and the log says why. Gains are small on CPU (3–8 % measured).
- Atomic: everything is written under a temporary name in the work dir and renamed when verified.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from ..quiet import quiet
from ..errors import InputError, ToolError
from ..arch.outputs import detect_head, wrap
from ..quality.runners import ort_session
from ..schemas.passes import ExportOnnxConfig
from .registry import register
from .state import ArtifactRecord, BuildState

REL_TOLERANCE = 1e-4
MAX_SINGLE_FILE_BYTES = 2_000_000_000 - 50_000_000  # protobuf's 2 GiB limit, minus room for the graph itself
MODEL_FILE = "model.onnx"


class ExportError(ToolError):
    """The model could not be exported faithfully (exporter failure, or ONNX output differs from PyTorch)."""


@dataclass
class ExportResult:
    path: Path
    inputs: list[dict[str, Any]]            # TensorSig-shaped: name, dtype, shape (ints or axis names)
    outputs: list[dict[str, Any]]
    max_abs_diff: dict[str, float]          # worst over the checked shapes, per output
    checked_shapes: list[tuple[int, ...]]
    exporter: str
    opset: int
    fused: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- sample inputs
def uses_token_type_ids(model, tokenizer) -> bool:
    import inspect

    try:
        takes = "token_type_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        takes = False
    produces = tokenizer is None or "token_type_ids" in getattr(tokenizer, "model_input_names", ["token_type_ids"])
    return takes and produces


def _text_inputs(batch: int, seq: int, vocab: int, with_tt: bool, seed: int) -> dict[str, np.ndarray]:
    """Random token ids; the last row (when batch > 1, else the single row) has padding after ~60 % of its
    length so an export that ignores attention_mask cannot pass verification."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    cut = max(1, int(seq * 0.6))
    if seq > 1:
        mask[-1, cut:] = 0
        ids[-1, cut:] = 0
    feed = {"input_ids": ids, "attention_mask": mask}
    if with_tt:
        feed["token_type_ids"] = np.zeros((batch, seq), dtype=np.int64)
    return feed


def _vision_inputs(batch: int, channels: int, size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"pixel_values": rng.standard_normal((batch, channels, size, size)).astype(np.float32)}


def _shapes(model, kind: str, config: ExportOnnxConfig) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """(export sample (batch, seq), verification shapes). Verification shapes differ from the sample in both
    axes when axes are dynamic."""
    if kind == "vision":
        return ((2, 0), [(1, 0), (3, 0)]) if config.dynamic_axes else ((1, 0), [(1, 0)])
    max_pos = int(getattr(getattr(model, "config", None), "max_position_embeddings", 512) or 512)
    if not config.dynamic_axes:
        seq = min(config.seq_len, max_pos)
        return (1, seq), [(1, seq)]
    return (2, min(16, max_pos)), [(1, min(9, max_pos)), (3, min(41, max_pos))]


def input_maker(model, model_kind: str, tokenizer, who: str):
    """(make(batch, seq, seed) → feed dict, input names, in the output wrapper's argument order) for this model."""
    cfg = getattr(model, "config", None)
    if model_kind == "vision":
        channels = int(getattr(cfg, "num_channels", 3))
        size = int(getattr(cfg, "image_size", 224))
        return (lambda b, s, seed: _vision_inputs(b, channels, size, seed)), ["pixel_values"]
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    if vocab <= 0:
        raise InputError(f"{who}: {type(model).__name__} has no config.vocab_size; cannot make token inputs for a "
                         f"text model")
    with_tt = uses_token_type_ids(model, tokenizer)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_tt else [])
    return (lambda b, s, seed: _text_inputs(b, s, vocab, with_tt, seed)), names


# --------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _attention(model, impl: str | None) -> Iterator[str | None]:
    """Temporarily switch a transformers model's attention implementation (eager is what the optimizer can fuse)."""
    cfg = getattr(model, "config", None)
    before = getattr(cfg, "_attn_implementation", None)
    if impl is None or cfg is None or before == impl or not hasattr(model, "set_attn_implementation"):
        yield before
        return
    try:
        model.set_attn_implementation(impl)
    except Exception:  # noqa: BLE001 - a custom model that cannot switch just keeps its own
        yield before
        return
    try:
        yield impl
    finally:
        model.set_attn_implementation(before)


def heads_per_layer(model) -> list[tuple[int, int]]:
    """(num_heads, query projection width) of every self-attention module, in order. Pruned models may differ
    per layer. Recognises BERT-style (`query`, `num_attention_heads`) and ViT/Llama-style (`q_proj`) modules."""
    found = []
    for mod in model.modules():
        heads = getattr(mod, "num_attention_heads", getattr(mod, "num_heads", None))
        q = getattr(mod, "query", None) or getattr(mod, "q_proj", None)
        width = getattr(q, "out_features", None)
        if isinstance(heads, int) and isinstance(width, int):
            found.append((heads, width))
    return found


_ONNX_DTYPES = {1: "float32", 7: "int64", 6: "int32", 10: "float16", 11: "float64", 9: "bool"}


def onnx_signature(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Graph inputs/outputs as TensorSig dicts (name, dtype, shape with axis names for dynamic axes)."""
    import onnx

    m = onnx.load(os.fspath(path), load_external_data=False)

    def sig(v) -> dict[str, Any]:
        t = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
        return {"name": v.name, "dtype": _ONNX_DTYPES.get(t.elem_type, str(t.elem_type)), "shape": dims}

    inits = {i.name for i in m.graph.initializer}
    return [sig(v) for v in m.graph.input if v.name not in inits], [sig(v) for v in m.graph.output]


def _max_abs_diffs(path: Path, wrapper, feeds: list[dict[str, np.ndarray]], input_names: list[str],
                   output_names: tuple[str, ...]) -> dict[str, float]:
    import torch

    session = ort_session(path, threads=2)
    in_graph = {i.name for i in session.get_inputs()}  # the exporter drops inputs the model never reads
    worst = {n: 0.0 for n in output_names}
    scale = {n: 1.0 for n in output_names}
    for feed in feeds:
        with torch.inference_mode():
            ref = wrapper(*[torch.from_numpy(feed[n]) for n in input_names])
        got = session.run(list(output_names), {n: feed[n] for n in input_names if n in in_graph})
        for name, r, g in zip(output_names, ref, got):
            r = r.numpy()
            if r.shape != g.shape:
                raise ExportError(f"export_onnx: output '{name}' has shape {g.shape} in ONNX but {r.shape} in "
                                  f"PyTorch for inputs of shape {feed[input_names[0]].shape}")
            worst[name] = max(worst[name], float(np.max(np.abs(r - g))) if r.size else 0.0)
            scale[name] = max(scale[name], float(np.max(np.abs(r))) if r.size else 1.0)
    for name in output_names:
        if not worst[name] <= REL_TOLERANCE * scale[name]:  # also catches NaN
            raise ExportError(f"export_onnx: ONNX output '{name}' differs from PyTorch by {worst[name]:.3g} "
                              f"(tolerance {REL_TOLERANCE * scale[name]:.3g} = {REL_TOLERANCE:g} x max |output| "
                              f"{scale[name]:.3g})")
    return worst


def _pin_output_dims(path: Path, example: dict[str, tuple[int, ...]], dynamic: set[str]) -> None:
    """The TorchScript exporter names some fixed output axes symbolically (`embeddings` comes out as
    ['batch', 'Divembeddings_dim_1']); write the real size of every axis that is not batch/sequence, so the
    manifest's signature says (batch, 384). Rewrites the file only when something changes."""
    import onnx

    model = onnx.load(os.fspath(path))
    changed = False
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if d.dim_param and d.dim_param not in dynamic and out.name in example and axis < len(example[out.name]):
                d.ClearField("dim_param")
                d.dim_value = int(example[out.name][axis])
                changed = True
    if changed:
        onnx.save_model(model, os.fspath(path))


def _export_graph(wrapper, args: tuple, path: Path, input_names: list[str], output_names: tuple[str, ...],
                  config: ExportOnnxConfig, kind: str) -> None:
    import torch

    if config.exporter == "torchscript":
        axes = None
        if config.dynamic_axes:
            seq_axes = {0: "batch"} if kind == "vision" else {0: "batch", 1: "sequence"}
            axes = {n: seq_axes for n in input_names}
            for n in output_names:
                axes[n] = {0: "batch", 1: "sequence"} if n == "last_hidden_state" and kind == "text" else {0: "batch"}
        torch.onnx.export(wrapper, args, os.fspath(path), dynamo=False, opset_version=config.opset,
                          input_names=input_names, output_names=list(output_names), dynamic_axes=axes,
                          do_constant_folding=True)
        return
    shapes = None
    if config.dynamic_axes:
        batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("sequence", min=1, max=100_000)
        shapes = tuple({0: batch} if kind == "vision" else {0: batch, 1: seq} for _ in input_names)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # it prints progress
        torch.onnx.export(wrapper, args, os.fspath(path), dynamo=True, external_data=False,
                          opset_version=config.opset, input_names=input_names, output_names=list(output_names),
                          dynamic_shapes=shapes, verbose=False)


def _fuse(src: Path, dst: Path, kind: str, heads: list[tuple[int, int]]) -> tuple[dict[str, int], str]:
    """onnxruntime.transformers fusion; returns (fused op counts, note)."""
    from onnxruntime.transformers.optimizer import optimize_model

    distinct = sorted(set(heads))
    if len(distinct) == 1:
        num_heads, hidden = distinct[0]
        note = f"{num_heads} heads per layer"
    else:
        num_heads, hidden = 0, 0
        note = ("layers have different head counts " + (str([h for h, _ in heads]) if heads else "(unknown)")
                + ": Attention left unfused")
    opt = optimize_model(os.fspath(src), model_type="vit" if kind == "vision" else "bert",
                         num_heads=num_heads, hidden_size=hidden)
    if len(distinct) != 1:
        # a single num_heads cannot describe these layers; make sure no Attention node slipped in
        if any(n.op_type in ("Attention", "MultiHeadAttention") for n in opt.model.graph.node):
            raise ExportError("fusion produced Attention nodes for a model with per-layer head counts")
    opt.save_model_to_file(os.fspath(dst), use_external_data_format=False)
    fused = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    return fused, note


# ---------------------------------------------------------------------------------------------- export
def export_onnx(model, path: str | os.PathLike[str], *, model_kind: Literal["text", "vision"] = "text",
                tokenizer=None, config: ExportOnnxConfig | None = None) -> ExportResult:
    """Export `model` to one verified .onnx file at `path` (see the module docstring for every decision)."""
    import torch

    config = config or ExportOnnxConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    started = time.perf_counter()
    model = model.eval()
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if n_bytes > MAX_SINGLE_FILE_BYTES:
        raise InputError(f"export_onnx: the model's weights are {n_bytes / 1e9:.2f} GB; a single-file ONNX "
                         f"holds at most 2 GB (protobuf limit) — shrink it first (prune / a smaller model)")

    sample_shape, check_shapes = _shapes(model, model_kind, config)
    make, input_names = input_maker(model, model_kind, tokenizer, "export_onnx")
    sample = make(*sample_shape, 0)
    feeds = [make(b, s, i + 1) for i, (b, s) in enumerate(check_shapes)]
    args = tuple(torch.from_numpy(sample[n]) for n in input_names)
    with torch.inference_mode():
        probe = model(**{n: a for n, a in zip(input_names, args)})
    try:
        head = detect_head(probe)
    except ValueError as exc:
        raise ExportError(f"export_onnx: {exc}") from None
    wrapper = wrap(model, model_kind, head).eval()
    output_names = wrapper.output_names()
    heads = heads_per_layer(model)

    tmp_plain = path.with_name(f".{path.stem}.plain.partial.onnx")
    tmp_fused = path.with_name(f".{path.stem}.fused.partial.onnx")
    fused: dict[str, int] = {}
    try:
        # eager attention only when fusing: it is what the optimizer's Attention pattern matches
        with _attention(model, "eager" if config.optimize else None) as impl, quiet(), torch.no_grad():
            try:
                _export_graph(wrapper, args, tmp_plain, input_names, output_names, config, model_kind)
            except Exception as exc:  # noqa: BLE001 - exporter failures are many and deep; name the model
                raise ExportError(f"export_onnx ({config.exporter}, opset {config.opset}) failed for "
                                  f"{type(model).__name__}: {type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:300]}") from exc
            with torch.inference_mode():
                example = {n: tuple(t.shape) for n, t in zip(output_names, wrapper(*args))}
            _pin_output_dims(tmp_plain, example, {"batch", "sequence"})
            diffs = _max_abs_diffs(tmp_plain, wrapper, feeds, input_names, output_names)
        log.append(f"export_onnx: {config.exporter} exporter, opset {config.opset}, attention {impl}, inputs "
                   f"{input_names}, outputs {list(output_names)}; ONNX vs PyTorch max abs diff "
                   + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
                   + f" on input shapes {[tuple(f[input_names[0]].shape) for f in feeds]}")
        final = tmp_plain
        if config.optimize:
            try:
                with quiet():
                    fused, note = _fuse(tmp_plain, tmp_fused, model_kind, heads)
                fused_diffs = _max_abs_diffs(tmp_fused, wrapper, feeds, input_names, output_names)
                final, diffs = tmp_fused, fused_diffs
                log.append(f"export_onnx: fused {fused or 'nothing'} ({note}); max abs diff "
                           + ", ".join(f"{k} {v:.2e}" for k, v in fused_diffs.items()))
            except Exception as exc:  # noqa: BLE001 - fusion is an optimisation; the plain graph is valid
                log.append(f"export_onnx: fusion rejected, keeping the unfused graph "
                           f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
                fused = {}
        os.replace(final, path)
    finally:
        for tmp in (tmp_plain, tmp_fused):
            tmp.unlink(missing_ok=True)

    inputs, outputs = onnx_signature(path)
    seconds = time.perf_counter() - started
    log.append(f"export_onnx: wrote {path.name} ({os.path.getsize(path) / 1e6:.1f} MB) in {seconds:.1f} s")
    return ExportResult(path=path, inputs=inputs, outputs=outputs, max_abs_diff=diffs,
                        checked_shapes=[tuple(f[input_names[0]].shape) for f in feeds], exporter=config.exporter,
                        opset=config.opset, fused=fused, seconds=seconds, log=log)


@register(ExportOnnxConfig)
def apply(config: ExportOnnxConfig, state: BuildState) -> BuildState:
    """Export `state.model` (the possibly pruned student) to `work_dir/model.onnx` as the fp32 artifact."""
    result = export_onnx(state.model, Path(state.work_dir) / MODEL_FILE, model_kind=state.model_kind,
                         tokenizer=state.tokenizer, config=config)
    for line in result.log:
        state = state.note(line)
    record = ArtifactRecord.of_file(result.path, "onnx", "fp32", config.kind, inputs=result.inputs,
                                    outputs=result.outputs, max_abs_diff=result.max_abs_diff,
                                    tolerance_rel=REL_TOLERANCE, checked_shapes=result.checked_shapes,
                                    exporter=result.exporter, opset=result.opset, fused=result.fused,
                                    seconds=round(result.seconds, 2))
    return state.with_artifact(record)
