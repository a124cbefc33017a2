"""Which operators does the model's ONNX graph contain? Export it (once: `graph/__init__.py` caches the result) and
count them.

- Encoders and ViTs are exported for real with the build's exporter (`passes.export_onnx`, which also verifies the
  graph against PyTorch); a config without weights gets seeded random weights: values do not matter for
  structure.
- An ONNX file is used as it is.
- Decoder LLMs (and any model whose weights are over ~1.5 GB) are not exported at full size: a 7B graph takes
  minutes and 27 GB, and the single-file exporter stops at 2 GB. A *stand-in* of the same architecture (same
  config class, activation, norm, attention and RoPE settings; 2 layers, hidden 64, 4 heads) is exported
  instead: it has the same operator *types*, not the same counts. Decoders are exported as a prefill graph without
  KV cache (what an accelerator compiles first); decode steps add cache Concat/Slice ops not checked here.
- Accelerator compilers see fixed shapes with shape arithmetic folded away, so besides the graph as exported we
  produce a *static* graph: every symbolic dimension fixed (batch 1, sequence = the plan's seq_len) and
  constant-folded by onnxruntime's basic optimizer, which only emits standard ONNX ops. Device op checks use it.
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..quiet import quiet
from ..schemas.graph import GraphNode, GraphOps, OpCount

if TYPE_CHECKING:  # pragma: no cover
    from ..schemas.modelspec import ModelSpec

STAND_IN_MAX_BYTES = 1_500_000_000  # fp32 weights above this are not exported at full size
STAND_IN_MAX_PARAMS = 20_000_000  # a stand-in that did not shrink (unknown config field names) is refused
STAND_IN_SHAPE = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4}



@dataclass
class ExportedGraph:
    """What exporting produced, before it is saved as an OpGraph artifact (the torch model is not saved)."""

    info: GraphOps
    exported_path: Path | None = None
    static_path: Path | None = None
    exported_nodes: list[GraphNode] = field(default_factory=list)
    static_nodes: list[GraphNode] = field(default_factory=list)
    torch_model: object | None = None   # the encoder/ViT that was exported, kept for a LiteRT conversion
    model_kind: str | None = None       # text | vision
    tokenizer: object | None = None


def op_name(domain: str, op_type: str) -> str:
    return op_type if domain in ("", "ai.onnx") else f"{domain}:{op_type}"


def graph_nodes(model) -> list[GraphNode]:
    """Nodes in graph order (ONNX graphs are topologically sorted), with which inputs are constants."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx")
               for o in n.output}
    out = []
    for n in model.graph.node:
        out.append(GraphNode(op=op_name(n.domain, n.op_type), name=n.name,
                             const_inputs=frozenset(i for i, x in enumerate(n.input) if x and x in consts)))
    return out


def count_ops(nodes: list[GraphNode]) -> list[OpCount]:
    c = Counter(n.op for n in nodes)
    return [OpCount(op=k, count=v) for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]


def one_line_error(exc: BaseException, limit: int = 240) -> str:
    s = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {s[:limit]}{'...' if len(s) > limit else ''}"


def _load(path: Path):
    import onnx

    return onnx.load(os.fspath(path), load_external_data=False)


def _dims(model, seq_len: int) -> dict[str, int]:
    """Symbolic input dimensions and the value each is fixed to: 'batch*' -> 1, anything else -> seq_len."""
    inits = {i.name for i in model.graph.initializer}
    dims: dict[str, int] = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param:
                dims[d.dim_param] = 1 if "batch" in d.dim_param.lower() else seq_len
    return dims


def static_graph(src: Path, dst: Path, seq_len: int) -> tuple[dict[str, int], str | None]:
    """Fix symbolic dims and let onnxruntime's basic optimizer fold the shape arithmetic. Returns (dims, error)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    model = _load(src)
    dims = _dims(model, seq_len)
    fixed = dst.with_name(f".{dst.stem}.fixed.onnx")
    try:
        for name, value in dims.items():
            make_dim_param_fixed(model.graph, name, value)
        fix_output_shapes(model)
        onnx.save(model, os.fspath(fixed))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = os.fspath(dst)
        so.log_severity_level = 3
        ort.InferenceSession(os.fspath(fixed), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - an unloadable graph is a finding, reported by the caller
        dst.unlink(missing_ok=True)
        return dims, one_line_error(exc)
    finally:
        fixed.unlink(missing_ok=True)
    return dims, None


# ------------------------------------------------------------------------------------------------ obtaining it
def _shrunk_config(cfg):
    """Same architecture, tiny: the operator types survive, the cost does not."""
    small = copy.deepcopy(cfg)
    heads = STAND_IN_SHAPE["num_attention_heads"]
    kv = getattr(cfg, "num_key_value_heads", None)
    for k, v in STAND_IN_SHAPE.items():
        if hasattr(small, k):
            setattr(small, k, v)
    if kv is not None:
        small.num_key_value_heads = heads if kv == getattr(cfg, "num_attention_heads", kv) else heads // 2
    if getattr(small, "head_dim", None) is not None:
        small.head_dim = STAND_IN_SHAPE["hidden_size"] // heads
    if getattr(small, "vocab_size", None):
        small.vocab_size = min(int(small.vocab_size), 512)
    small.use_cache = False
    return small


def _export_decoder(model, path: Path, opset: int = 17) -> None:
    """Prefill graph: (input_ids, attention_mask) -> logits, no KV cache."""
    import torch

    class Prefill(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    ids = torch.randint(0, int(model.config.vocab_size), (1, 16))
    axes = {"batch": 0, "sequence": 1}
    dyn = {n: {v: k for k, v in axes.items()} for n in ("input_ids", "attention_mask", "logits")}
    with quiet(), torch.no_grad():
        torch.onnx.export(Prefill(model).eval(), (ids, torch.ones_like(ids)), os.fspath(path), dynamo=False,
                          opset_version=opset, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=dyn)


def _stand_in(model_source: str, spec: "ModelSpec", path: Path) -> tuple[str, str, object | None, str | None]:
    """Export a scaled-down model of the same architecture. Returns (exporter, note, encoder model, kind); the
    model is None for decoders (their prefill graph is not what the LiteRT export converts)."""
    import torch

    from ..modelspec.hf_config import load_config, model_class, quiet_transformers
    from ..modelspec.sources import resolve_source
    from ..schemas.passes import ExportOnnxConfig
    from ..passes.export_onnx import export_onnx

    src = resolve_source(model_source)
    cfg = _shrunk_config(load_config(src.config_path))
    with quiet_transformers(), torch.device("meta"):  # size check first: no memory, no weights
        params = sum(p.numel() for p in model_class(cfg)(cfg).parameters())
    if params > STAND_IN_MAX_PARAMS:
        raise ValueError(f"cannot scale this architecture down ({cfg.model_type} names its sizes differently: the "
                         f"stand-in would still have {params / 1e6:.0f} M parameters)")
    torch.manual_seed(0)
    with quiet_transformers():
        model = model_class(cfg)(cfg).eval()
    shape = ", ".join(f"{k.replace('num_', '').replace('_', ' ')} {getattr(cfg, k)}"
                      for k in STAND_IN_SHAPE if hasattr(cfg, k))
    why = ("decoder LLMs are not exported at full size" if spec.transformer and spec.transformer.family == "decoder"
           else f"{spec.weight_bytes_fp32 / 1e9:.1f} GB of fp32 weights is too large to export for an op check")
    note = (f"{why}: op types come from a stand-in of the same architecture ({type(model).__name__}, {shape}, "
            f"random weights); they are the real model's op types, the counts are not")
    if spec.transformer and spec.transformer.family == "decoder":
        _export_decoder(model, path)
        return "torchscript (prefill, no KV cache)", note + "; prefill graph without KV cache", None, None
    kind = "vision" if spec.transformer and spec.transformer.family == "vision" else "text"
    export_onnx(model, path, model_kind=kind, config=ExportOnnxConfig())
    return "torchscript", note, model, kind


def _export_real(model_source: str, spec: "ModelSpec", path: Path) -> tuple[str, str, object, str, object]:
    from ..builder.sources import load_for_build
    from ..schemas.passes import ExportOnnxConfig
    from ..passes.export_onnx import export_onnx

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in a report run
    try:
        loaded = load_for_build(model_source)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    cfg = ExportOnnxConfig()
    res = export_onnx(loaded.model, path, model_kind=loaded.kind, tokenizer=loaded.tokenizer, config=cfg)
    weights = "random (seeded) weights: a config has none; structure only" if loaded.random_weights \
        else "its own weights"
    worst = max(res.max_abs_diff.values(), default=0.0)
    return (res.exporter,
            f"exported once with edge-sdk's ONNX export ({res.exporter}, opset {res.opset}, dynamic batch/sequence) "
            f"from {weights}; verified against PyTorch (max abs diff {worst:.1e})",
            loaded.model, loaded.kind, loaded.tokenizer)


def export_graph(model_source: str, spec: "ModelSpec", work_dir: Path, *, seq_len: int) -> ExportedGraph:
    """Obtain, count and fix-shape the model's graph. Never raises for a model that cannot be exported: the
    report says why its op coverage was not checked."""
    from ..modelspec.sources import resolve_source

    started = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "model.onnx"
    decoder = spec.transformer is not None and spec.transformer.family == "decoder"
    torch_model = kind = tokenizer = None
    try:
        if spec.source_kind == "onnx":
            path = resolve_source(model_source).path
            status, exporter, note = "onnx_file", None, "the ONNX file as given"
        elif decoder or spec.weight_bytes_fp32 > STAND_IN_MAX_BYTES:
            status = "stand_in"
            exporter, note, torch_model, kind = _stand_in(model_source, spec, path)
        else:
            status = "exported"
            exporter, note, torch_model, kind, tokenizer = _export_real(model_source, spec, path)
    except Exception as exc:  # noqa: BLE001 - exporters fail in many ways; the report names the error and goes on
        return ExportedGraph(GraphOps(status="not_checked", note=f"not checked: the export failed ({one_line_error(exc)})",
                                   seconds=round(time.perf_counter() - started, 2)))
    exported = _load(path)
    nodes = graph_nodes(exported)
    opset = next((o.version for o in exported.opset_import if o.domain in ("", "ai.onnx")), None)
    info = GraphOps(status=status, note=note, opset=opset, exporter=exporter, nodes=len(nodes),  # type: ignore
                    ops=count_ops(nodes))
    static_path = work_dir / "model.static.onnx"
    dims, err = static_graph(path, static_path, seq_len)
    info.static_shape = dims
    static_nodes: list[GraphNode] = []
    if err is None:
        static_nodes = graph_nodes(_load(static_path))
        info.static_ops = count_ops(static_nodes)
    else:
        static_path = None  # type: ignore[assignment]
        info.note += (f"; the fixed-shape graph could not be made (onnxruntime: {err}), so accelerator checks use "
                      f"the graph as exported")
    info.seconds = round(time.perf_counter() - started, 2)
    return ExportedGraph(info=info, exported_path=path, static_path=static_path, exported_nodes=nodes,
                      static_nodes=static_nodes or nodes, torch_model=torch_model, model_kind=kind,
                      tokenizer=tokenizer)
