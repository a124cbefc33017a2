"""What is in an ONNX file? Params from the initializers, layers and FLOPs from the graph.

- Params: every floating-point or quantized (int8/uint8/int4) initializer with more than one element, counted once
  (exporters share identical tensors; scalar constants and int64 shape/index tensors are not parameters). Weights
  stored as external data are counted from their declared shape without being read.
- Layers: MatMul/Gemm/Conv with a constant weight (bias Adds folded in), Gather on a weight table (embedding),
  LayerNormalization, Softmax, activation ops, and activation x activation MatMuls (attention scores when they feed
  a Softmax, attention context otherwise). The module path comes from the exporter's node names (legacy exporter:
  `/encoder/layer.0/attention/self/query/MatMul`) or name-scope metadata (dynamo exporter).
- FLOPs: from shapes after ONNX shape inference with the symbolic inputs fixed to batch/seq_len (data propagation
  resolves Reshape targets); a weight MatMul whose input shape stays unknown is assumed to run on batch x seq_len
  rows.
"""

from __future__ import annotations

import contextlib
import tempfile

import ast
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import flops as F
from ..arch.naming import block_from_path, classify_linear, classify_param_holder
from ..schemas.modelspec import LayerSpec, ModelSpec, TensorSig, TransformerInfo
from .sources import one_line

_MATMUL_OPS = {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulNBits", "QGemm"}
_NORM_OPS = {"LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
             "SkipSimplifiedLayerNormalization", "RMSNormalization"}
_ACT_OPS = {"Gelu": "gelu", "FastGelu": "gelu", "BiasGelu": "gelu", "QuickGelu": "gelu", "Erf": "gelu",
            "Relu": "relu", "Sigmoid": "silu", "Tanh": "tanh", "HardSigmoid": "sigmoid"}
_PASS_THROUGH = {"Identity", "Transpose", "Cast", "DequantizeLinear", "Reshape", "Squeeze", "Unsqueeze", "Flatten"}
_TO_SOFTMAX = {"Mul", "Div", "Add", "Sub", "Where", "Cast", "Reshape"}


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def load_onnx(path: Path) -> Any:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise InputError(f"{path}: not a valid ONNX model ({one_line(exc, 160)})") from None
    if model.ir_version <= 0 or len(model.graph.node) == 0:
        raise InputError(f"{path}: not a valid ONNX model (no graph nodes)")
    return model


def _param_dtypes() -> set[int]:
    from onnx import TensorProto as T

    return {T.FLOAT, T.FLOAT16, T.BFLOAT16, T.DOUBLE, T.INT8, T.UINT8, T.INT4, T.UINT4,
            getattr(T, "FLOAT8E4M3FN", T.FLOAT), getattr(T, "FLOAT8E5M2", T.FLOAT)}


def _dtype_name(elem_type: int) -> str:
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except Exception:
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _scope(node: Any) -> str:
    """Module path of a node: dynamo name scopes, or the legacy exporter's slash path."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
                if isinstance(scopes, list) and len(scopes) >= 2:
                    return str(scopes[-2])
            except (ValueError, SyntaxError):
                pass
    name = node.name or ""
    if name.startswith("/"):
        parts = [p for p in name.split("/") if p]
        return ".".join(parts[:-1])
    return ""


def _concrete_inputs(model: Any, batch: int, seq_len: int, image_size: int | None, init_names: set[str]) -> Any:
    """A copy of the model whose symbolic input dims are fixed, so shape inference yields numbers."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    # weights kept as external data are not read: shape inference sees them as inputs of their declared shape
    external = [i for i in m.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        keep = [i for i in m.graph.initializer if i.data_location != onnx.TensorProto.EXTERNAL]
        del m.graph.initializer[:]
        m.graph.initializer.extend(keep)
        declared = {i.name for i in m.graph.input}
        for init in external:
            if init.name not in declared:
                m.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    for inp in m.graph.input:
        if inp.name in init_names or not inp.type.HasField("tensor_type"):
            continue
        dims = inp.type.tensor_type.shape.dim
        rank = len(dims)
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            label = dim.dim_param.lower() if dim.HasField("dim_param") else ""
            if "batch" in label or (axis == 0 and not any(k in label for k in ("seq", "len", "token"))):
                value = batch
            elif rank == 4 and axis >= 2:
                value = image_size or 224
            else:
                value = seq_len
            dim.Clear()
            dim.dim_value = value
    return m


def _shape_dict(graph: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if all(d >= 0 for d in dims):
            out[vi.name] = dims
    return out


def _shapes(model: Any) -> dict[str, list[int]]:
    """Static shapes of every tensor: onnxruntime's symbolic shape inference (resolves the Reshape/Expand chains of
    transformer exports), completed by ONNX's own inference with data propagation."""
    import logging

    import onnx

    out: dict[str, list[int]] = {}
    try:
        out.update(_shape_dict(onnx.shape_inference.infer_shapes(model, data_prop=True).graph))
    except Exception:
        pass
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        logging.getLogger("onnxruntime.tools.symbolic_shape_infer").setLevel(logging.CRITICAL)
        # On failure it dumps sym_shape_infer_temp.onnx (+ external .data files) into the working directory:
        # run it in a throw-away one so nothing lands in the user's tree.
        with tempfile.TemporaryDirectory(prefix="edge-sdk-shapes-") as scratch, contextlib.chdir(scratch):
            out.update(_shape_dict(SymbolicShapeInference.infer_shapes(model, auto_merge=True).graph))
    except Exception:
        pass
    for init in model.graph.initializer:
        out[init.name] = list(init.dims)
    return out


def _sig(vi: Any) -> TensorSig:
    tt = vi.type.tensor_type
    shape: list[int | str] = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
        else:
            shape.append(d.dim_param or f"dim{i}")
    return TensorSig(name=vi.name, dtype=_dtype_name(tt.elem_type), shape=shape)


class _Walk:
    def __init__(self, model: Any, shapes: dict[str, list[int]], batch: int, seq_len: int):
        g = model.graph
        self.shapes, self.batch, self.seq_len = shapes, batch, seq_len
        self.inits = {i.name: i for i in g.initializer}
        ok = _param_dtypes()
        self.param_inits = {n for n, i in self.inits.items() if i.data_type in ok and _numel(i.dims) > 1}
        self.claimed: set[str] = set()
        self.nodes = list(g.node)
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        # tensors computed only from initializers/constants → the initializers they come from
        self.const_src: dict[str, set[str]] = {n: {n} for n in self.inits}
        for node in self.nodes:
            ins = [i for i in node.input if i]
            if node.op_type == "Constant":
                for o in node.output:
                    self.const_src[o] = set()
            elif ins and node.op_type in _PASS_THROUGH | {"Mul", "Add", "Concat"} and all(
                    i in self.const_src for i in ins):
                src = set().union(*(self.const_src[i] for i in ins))
                for o in node.output:
                    self.const_src[o] = src
        self.layers: list[LayerSpec] = []
        self.producer_layer: dict[str, int] = {}
        self.names: Counter[str] = Counter()
        self.unknown_flops = 0

    def _claim(self, tensor: str) -> tuple[int, list[int] | None]:
        """Params behind a constant input not yet counted; the weight's dims (of the largest initializer)."""
        params, dims, best = 0, None, -1
        for name in self.const_src.get(tensor, ()):
            if name not in self.param_inits:
                continue
            n = _numel(self.inits[name].dims)
            if n > best:
                best, dims = n, list(self.inits[name].dims)
            if name not in self.claimed:
                self.claimed.add(name)
                params += n
        return params, dims

    def _name(self, base: str) -> str:
        self.names[base] += 1
        return base if self.names[base] == 1 else f"{base}#{self.names[base]}"

    def _add(self, node: Any, layer: LayerSpec) -> None:
        self.layers.append(layer)
        for o in node.output:
            self.producer_layer[o] = len(self.layers) - 1

    def _feeds_softmax(self, tensor: str, depth: int = 0) -> bool:
        for c in self.consumers.get(tensor, []):
            if c.op_type == "Softmax":
                return True
            if depth < 4 and c.op_type in _TO_SOFTMAX and any(self._feeds_softmax(o, depth + 1) for o in c.output):
                return True
        return False

    def run(self) -> None:
        for node in self.nodes:
            op = node.op_type
            scope = _scope(node)
            block = block_from_path(scope) if scope else block_from_path(node.name or "")
            const_inputs = [i for i in node.input if i and i in self.const_src]
            if op in _MATMUL_OPS:
                self._matmul(node, scope, block, const_inputs)
            elif op == "Conv" and len(node.input) > 1 and node.input[1] in self.const_src:
                self._conv(node, scope, block)
            elif op == "Gather" and node.input and node.input[0] in self.const_src and any(
                    n in self.param_inits for n in self.const_src[node.input[0]]):
                params, dims = self._claim(node.input[0])
                out = self.shapes.get(node.output[0])
                width = dims[-1] if dims else 0
                tokens = _numel(out[:-1]) if out else self.batch * self.seq_len
                self._add(node, LayerSpec(name=self._name(scope or node.name or "embedding"), kind="embedding",
                                          block=block, module=node.name or None, params=params,
                                          weight_bytes_fp32=params * 4, in_features=dims[0] if dims else None,
                                          out_features=width or None, tokens=tokens, **F.embedding(tokens, width)))
            elif op in _NORM_OPS:
                params = sum(self._claim(i)[0] for i in const_inputs)
                out = self.shapes.get(node.output[0])
                width = out[-1] if out else 0
                tokens = _numel(out[:-1]) if out else self.batch * self.seq_len
                self._add(node, LayerSpec(name=self._name(scope or node.name), kind="norm", block=block,
                                          module=node.name or None, params=params, weight_bytes_fp32=params * 4,
                                          in_features=width or None, out_features=width or None, tokens=tokens,
                                          **F.norm(tokens, width, rms="Simplified" in op or "RMS" in op)))
            elif op == "Softmax":
                out = self.shapes.get(node.output[0])
                n = _numel(out) if out else 0
                heads = out[1] if out and len(out) == 4 else None
                self._add(node, LayerSpec(name=self._name(f"{scope}.softmax" if scope else node.name),
                                          kind="softmax", block=block, module=node.name or None, heads=heads,
                                          flops=F.SOFTMAX_FLOPS_PER_ELEM * n, activation_bytes=n * 4,
                                          input_bytes=n * 4))
            elif op in _ACT_OPS:
                out = self.shapes.get(node.output[0])
                n = _numel(out) if out else 0
                per = F.ACT_FLOPS_PER_ELEM[_ACT_OPS[op]]
                self._add(node, LayerSpec(name=self._name(f"{scope}.act" if scope else node.name),
                                          kind="activation", block=block, module=node.name or None,
                                          params=0, flops=per * n, activation_bytes=n * 4, input_bytes=n * 4,
                                          out_features=out[-1] if out else None))
            elif const_inputs:
                self._other_with_params(node, scope, block, const_inputs)

    def _matmul(self, node: Any, scope: str, block: int | None, const_inputs: list[str]) -> None:
        weight_in = next((i for i in const_inputs if any(n in self.param_inits for n in self.const_src[i])), None)
        a = self.shapes.get(node.input[0]) if node.input else None
        out = self.shapes.get(node.output[0])
        if weight_in is None:  # activation x activation: attention scores or context
            b = self.shapes.get(node.input[1]) if len(node.input) > 1 else None
            fl = F.matmul_flops(a, b) if a and b else 0
            if not fl:
                self.unknown_flops += 1
            scores = self._feeds_softmax(node.output[0])
            kind = "attention_scores" if scores else "attention_context"
            heads = out[1] if out and len(out) == 4 else None
            base = f"{scope}.{'scores' if scores else 'context'}" if scope else node.name
            self._add(node, LayerSpec(name=self._name(base), kind=kind, block=block, module=node.name or None,
                                      gemm=True, heads=heads, flops=fl,
                                      activation_bytes=_numel(out) * 4 if out else 0,
                                      input_bytes=(_numel(a) + _numel(b)) * 4 if a and b else 0))
            return
        params, dims = self._claim(weight_in)
        # extra params (Gemm bias C, quantization scales) belong to this layer too
        for other in const_inputs:
            if other != weight_in:
                params += self._claim(other)[0]
        trans_b = any(att.name == "transB" and att.i for att in node.attribute)
        if dims and len(dims) >= 2:
            k, n = (dims[-1], dims[-2]) if trans_b else (dims[-2], dims[-1])
        else:
            k = n = 0
        rows = _numel(a[:-1]) if a else self.batch * self.seq_len
        tokens = rows
        kind = classify_linear(scope or node.name or "", in_block=block is not None)
        fl = 2 * rows * k * n
        self._add(node, LayerSpec(name=self._name(scope or node.name), kind=kind, block=block,
                                  module=node.name or None, params=params, weight_bytes_fp32=params * 4, gemm=True,
                                  in_features=k or None, out_features=n or None, tokens=tokens, flops=fl,
                                  activation_bytes=(_numel(out) if out else rows * n) * 4,
                                  input_bytes=rows * k * 4))

    def _conv(self, node: Any, scope: str, block: int | None) -> None:
        params, dims = self._claim(node.input[1])
        if len(node.input) > 2 and node.input[2]:
            params += self._claim(node.input[2])[0]
        out = self.shapes.get(node.output[0])
        group = next((att.i for att in node.attribute if att.name == "group"), 1) or 1
        in_per = _numel(dims[1:]) if dims else 0
        fl = 2 * _numel(out) * in_per if out else 0
        kind = "patch_embed" if "patch" in (scope + node.name).lower() or block is None else "other"
        self._add(node, LayerSpec(name=self._name(scope or node.name), kind=kind, block=block,
                                  module=node.name or None, params=params, weight_bytes_fp32=params * 4, gemm=True,
                                  in_features=in_per * group or None, out_features=dims[0] if dims else None,
                                  tokens=_numel(out[:1] + out[2:]) if out else None, flops=fl,
                                  activation_bytes=_numel(out) * 4 if out else 0))

    def _other_with_params(self, node: Any, scope: str, block: int | None, const_inputs: list[str]) -> None:
        params = sum(self._claim(i)[0] for i in const_inputs)
        if not params:
            return
        produced_by = [self.producer_layer[i] for i in node.input if i in self.producer_layer]
        if produced_by and node.op_type in ("Add", "Mul"):  # a bias / scale of the op before
            idx = produced_by[0]
            layer = self.layers[idx]
            self.layers[idx] = layer.model_copy(update={"params": layer.params + params,
                                                        "weight_bytes_fp32": (layer.params + params) * 4})
            for o in node.output:
                self.producer_layer[o] = idx
            return
        self._add(node, LayerSpec(name=self._name(scope or node.name), kind=classify_param_holder(scope or node.name),
                                  block=block, module=node.name or None, params=params, weight_bytes_fp32=params * 4))

    def finish(self) -> None:
        rest = sorted(self.param_inits - self.claimed)
        if rest:
            n = sum(_numel(self.inits[r].dims) for r in rest)
            self.claimed.update(rest)
            self.layers.append(LayerSpec(name="(initializers not used by any recognised op)", kind="other",
                                         params=n, weight_bytes_fp32=n * 4))
        heads_by_block = {layer.block: layer.heads for layer in self.layers
                          if layer.kind == "attention_scores" and layer.heads}
        for i, layer in enumerate(self.layers):
            known = layer.block in heads_by_block
            if layer.kind in ("attention_qkv", "attention_out") and layer.heads is None and known:
                self.layers[i] = layer.model_copy(update={"heads": heads_by_block[layer.block]})


def _infer_info(layers: list[LayerSpec]) -> TransformerInfo | None:
    blocks = sorted({layer.block for layer in layers if layer.block is not None})
    first = [layer for layer in layers if layer.block == (blocks[0] if blocks else None)]
    qkv = [layer for layer in first if layer.kind == "attention_qkv"]
    scores = [layer for layer in first if layer.kind == "attention_scores" and layer.heads]
    ups = [layer for layer in first if layer.kind == "ffn_up"]
    if not blocks or not qkv or not scores or not qkv[0].in_features:
        return None
    hidden, heads = qkv[0].in_features, scores[0].heads
    assert heads is not None
    if hidden % heads:
        return None
    family = ("decoder" if any(layer.kind == "lm_head" for layer in layers)
              else "vision" if any(layer.kind == "patch_embed" for layer in layers) else "encoder")
    q_out = qkv[0].out_features or hidden
    head_dim = q_out // heads if len(qkv) >= 3 else hidden // heads
    kv = heads
    if len(qkv) >= 3 and qkv[1].out_features and head_dim:
        kv = max(1, qkv[1].out_features // head_dim)
    embeds = [layer for layer in layers if layer.kind == "embedding" and layer.in_features]
    vocab = max((layer.in_features or 0 for layer in embeds), default=0) or None
    pos = [layer for layer in embeds if "position" in layer.name.lower()]
    return TransformerInfo(model_type="onnx", family=family, num_layers=len(blocks), hidden_size=hidden,
                           num_heads=heads, num_kv_heads=kv, head_dim=head_dim or hidden // heads,
                           ffn_size=(ups[-1].out_features or 0) if ups else 0,
                           vocab_size=vocab if family != "vision" else None,
                           max_positions=pos[0].in_features if pos else None,
                           gated_ffn=len(ups) >= 2, tie_word_embeddings=False)


def inspect_onnx(path: Path, *, batch: int, seq_len: int | None, image_size: int | None) -> ModelSpec:
    model = load_onnx(path)
    g = model.graph
    init_names = {i.name for i in g.initializer}
    seq = seq_len or 128
    shapes = _shapes(_concrete_inputs(model, batch, seq, image_size, init_names))
    walk = _Walk(model, shapes, batch, seq)
    walk.run()
    walk.finish()
    notes = ["structure inferred from the ONNX graph (module paths from node names)"]
    if walk.unknown_flops:
        notes.append(f"{walk.unknown_flops} matmul(s) with shapes unknown after shape inference: FLOPs not counted")
    info = _infer_info(walk.layers)
    if info is None:
        notes.append("transformer structure not recognised in the graph")
    inputs = [_sig(vi) for vi in g.input if vi.name not in init_names]
    patch = next((layer for layer in walk.layers if layer.kind == "patch_embed"), None)
    image = next((s.shape for s in inputs if len(s.shape) == 4), None)
    if info is not None and info.family == "vision" and patch is not None and image is not None:
        channels = image[1] if isinstance(image[1], int) else 3
        side = image_size or (image[2] if isinstance(image[2], int) else 224)
        p = int(round(((patch.in_features or 0) / channels) ** 0.5))
        info = info.model_copy(update={"num_channels": channels, "image_size": side, "patch_size": p or None})
    if image_size is not None and not any(len(s.shape) == 4 for s in inputs):
        raise InputError(f"{path}: --image-size applies to vision models only; this model has no image input")
    # tokens per sample as the graph sees them (a ViT's patches + CLS), when shapes resolved
    first_qkv = next((layer for layer in walk.layers if layer.kind == "attention_qkv" and layer.tokens), None)
    if first_qkv is not None and first_qkv.tokens and first_qkv.tokens % batch == 0:
        seq = first_qkv.tokens // batch
    outputs = [_sig(vi) for vi in g.output]
    external, missing = 0, 0
    sizes: Counter[str] = Counter()
    from onnx import TensorProto

    for init in g.initializer:
        if init.name in walk.param_inits:
            sizes[_dtype_name(init.data_type)] += _numel(init.dims)
        if init.data_location == TensorProto.EXTERNAL:
            external += 1
            loc = next((e.value for e in init.external_data if e.key == "location"), "")
            if not (path.parent / loc).is_file():
                missing += 1
    if missing:
        notes.append(f"{missing} of {external} external weight tensors missing next to {path.name}")
    total = sum(_numel(walk.inits[n].dims) for n in walk.param_inits)
    return ModelSpec(name=path.stem, source=str(path.resolve()), source_kind="onnx", architecture=None,
                     batch=batch, seq_len=seq, transformer=info, layers=walk.layers, total_params=total,
                     weight_bytes_fp32=total * 4, total_flops=sum(layer.flops for layer in walk.layers),
                     inputs=inputs, outputs=outputs, has_weights=missing == 0,
                     dtype=sizes.most_common(1)[0][0] if sizes else "float32", notes=notes)
