"""Which ModelSpec layer does a profiled runtime node belong to?

onnxruntime reports the ONNX node names the exporter gave (`/model/encoder/layer.0/attention/self/query/MatMul_quant`:
the module path, then the op), and fusions keep the name of the node they start from
(`.../self/MatMul/MatMulScaleFusion/`) — or, for a few CPU fusions, drop the scope (`SkipLayerNormalization_token_3`,
`Gelu`). The mapping, in order:
1. the longest ModelSpec layer `module`/`name` that is a prefix of the node's scope (any wrapper prefix such as
   `/model/` or `/bert/` is skipped): weights and the quantize steps named after their producer land there;
2. a scope that only *contains* layers (`...attention.self`, `...attention.output`, `embeddings`): attention glue
   goes to scores (before the Softmax), softmax (the Softmax and the masking right after it) or context (the rest),
   the activation-by-activation MatMuls to scores / context by execution order; an Add (the residual) to the scope's norm, any
   other op of a scope with an activation to the activation; anything else to the scope's first layer;
3. an unscoped fused node of a known kind (LayerNorm/SkipLayerNorm, GELU, Softmax, Attention) to the next layer of
   that kind after the layer of the node executed before it;
4. an unnamed layout node (`Transpose_77841`: OpenVINO's CPU plugin inserts the transposes of Q/K to the heads
   layout under generated names) executed between two nodes of one transformer block goes to the layer executed
   right before it — the projection whose output it lays out, where the cost model charges that transpose too;
5. everything else (shape arithmetic at the graph root, output pooling, unscoped Gathers) is "(other)".

OpenVINO IR converted from PyTorch names its runtime nodes `__module.<module path>/aten::<op>/<node>`
(`__module.model.encoder.layer.5.intermediate.dense/aten::linear/MatMul`); those are read as the scope
`/model/encoder/layer/5/intermediate/dense/aten::linear/` and mapped the same way. Its CPU plugin runs attention as
one fused ScaledDotProductAttention kernel, which lands on the attention's scores layer (softmax and context then
measure 0: compare the three together).
"""

from __future__ import annotations

import re
from typing import Any

from ..arch.naming import in_attention
from ..schemas.modelspec import LayerSpec, ModelSpec

OTHER = "(other)"
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Where", "IsNaN", "Cast", "Not", "Equal", "Sqrt", "Pow", "Neg"}
_MATMULS = {"MatMul", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QLinearMatMul", "Einsum"}
_LAYOUT = {"Transpose", "Reshape"}
_GENERATED = re.compile(r"^[A-Za-z]+_\d+$")  # a runtime-made name, no scope: `Transpose_77841`
_FUSED_KIND = {"LayerNormalization": "norm", "SkipLayerNormalization": "norm", "SimplifiedLayerNormalization": "norm",
               "SkipSimplifiedLayerNormalization": "norm", "Gelu": "activation", "FastGelu": "activation",
               "BiasGelu": "activation", "QuickGelu": "activation", "Softmax": "softmax",
               "Attention": "attention_scores", "MultiHeadAttention": "attention_scores", "MVN": "norm"}


def _onnx_like(name: str) -> str:
    """An OpenVINO `__module.a.b/aten::op/Node` name as the ONNX-style `/a/b/aten::op/Node`; others unchanged."""
    if not name.startswith("__module."):
        return name
    module, _, rest = name[len("__module."):].partition("/")
    return "/" + module.replace(".", "/") + "/" + rest


def _tokens(path: str) -> list[str]:
    return [t for t in re.split(r"[./]", path) if t]


class _Trie:
    def __init__(self) -> None:
        self.kids: dict[str, _Trie] = {}
        self.layer: str | None = None
        self.under: list[str] = []  # layers at or below this node, in ModelSpec order

    def add(self, tokens: list[str], layer: str) -> None:
        node = self
        for t in tokens:
            node = node.kids.setdefault(t, _Trie())
            node.under.append(layer)
        node.layer = node.layer or layer


def _build(spec: ModelSpec) -> _Trie:
    root = _Trie()
    for layer in spec.layers:
        root.add(_tokens(layer.module or layer.name), layer.name)
        if layer.module and layer.module != layer.name:
            root.add(_tokens(layer.name), layer.name)
    return root


def _walk(root: _Trie, tokens: list[str]) -> tuple[str | None, _Trie | None, int]:
    """(deepest layer on the path, deepest scope node, its depth) over every start offset (wrappers skipped)."""
    best: tuple[str | None, _Trie | None, int] = (None, None, 0)
    best_key = (0, 0)
    for start in range(len(tokens)):
        node, layer, depth, layer_depth = root, None, 0, 0
        for t in tokens[start:]:
            nxt = node.kids.get(t)
            if nxt is None:
                break
            node, depth = nxt, depth + 1
            if node.layer is not None:
                layer, layer_depth = node.layer, depth
        key = (layer_depth, depth)
        if key > best_key:
            best, best_key = (layer, node if depth else None, depth), key
    return best


def _scope_of(node_name: str) -> list[str]:
    """The node's tokens without its own (op) name: `/a/b/MatMul_quant` → [a, b]."""
    parts = [p for p in node_name.split("/") if p]
    return _tokens("/".join(parts[:-1])) if node_name.startswith("/") else []


def map_nodes(nodes: list[dict[str, Any]], spec: ModelSpec) -> list[str]:
    """The ModelSpec layer name (or OTHER) of every node; `nodes` carry "node", "op_type" and "order"."""
    root = _build(spec)
    layers = {layer.name: layer for layer in spec.layers}
    order = [layer.name for layer in spec.layers]
    index = {n: i for i, n in enumerate(order)}
    out: list[str | None] = [None] * len(nodes)
    scoped: dict[int, tuple[_Trie, list[str]]] = {}
    for i, n in enumerate(nodes):
        name = _onnx_like(n["node"])
        full = _tokens(name) if name.startswith("/") else []
        layer, _, _ = _walk(root, full)
        if layer is not None:
            out[i] = layer
            continue
        scope_tokens = _scope_of(name)
        _, scope, depth = _walk(root, scope_tokens)
        if scope is not None and depth >= 1:
            scoped[i] = (scope, scope_tokens)
    # scoped glue: attention scopes need the order of their Softmax and of their activation x activation MatMuls
    groups: dict[int, list[int]] = {}
    for i, (scope, _) in scoped.items():
        groups.setdefault(id(scope), []).append(i)
    for members in groups.values():
        scope, tokens = scoped[members[0]]
        kids = [layers[x] for x in dict.fromkeys(scope.under)]
        by_kind = {k.kind: k.name for k in reversed(kids)}  # first of each kind
        attn = "softmax" in by_kind and ("attention_scores" in by_kind or in_attention(".".join(tokens) + ".x"))
        if attn:
            mm = sorted((i for i in members if nodes[i].get("op_type") in _MATMULS), key=lambda i: nodes[i]["order"])
            sm = [nodes[i]["order"] for i in members if nodes[i].get("op_type") == "Softmax"]
            softmax_at = min(sm) if sm else None
            context_at = nodes[mm[-1]]["order"] if len(mm) >= 2 else None
            for i in members:
                o, op = nodes[i]["order"], nodes[i].get("op_type")
                if op == "Softmax":
                    out[i] = by_kind["softmax"]
                elif mm and i == mm[0] and len(mm) >= 2:
                    out[i] = by_kind.get("attention_scores", by_kind["softmax"])
                elif softmax_at is None or o < softmax_at:
                    out[i] = by_kind.get("attention_scores", by_kind["softmax"])
                elif op in _ELEMENTWISE and (context_at is None or o < context_at):
                    out[i] = by_kind["softmax"]
                else:
                    out[i] = by_kind.get("attention_context", by_kind["softmax"])
            continue
        for i in members:
            op = nodes[i].get("op_type")
            if "activation" in by_kind and op not in _MATMULS:
                out[i] = by_kind["activation"]
            elif op in ("Add", "Sub") and "norm" in by_kind:  # the residual add before a post-norm
                out[i] = by_kind["norm"]
            else:
                out[i] = kids[0].name
    # unscoped fused nodes: the next layer of their kind after the layer executed before them
    by_order = sorted(range(len(nodes)), key=lambda i: nodes[i].get("order", 0))
    prev: str | None = None
    for i in by_order:
        if out[i] is None:
            kind = _FUSED_KIND.get(nodes[i].get("op_type") or "")
            if kind is not None and prev is not None:
                nxt = next((x for x in order[index[prev] + 1:] if layers[x].kind == kind), None)
                if nxt is not None and layers[nxt].block == layers[prev].block:
                    out[i] = nxt
        if out[i] is not None and out[i] != OTHER:
            prev = out[i]
    # unnamed layout nodes inside one block: the layer executed right before them
    mapped = [i for i in by_order if out[i] is not None]
    for i in by_order:
        if out[i] is None and nodes[i].get("op_type") in _LAYOUT and _GENERATED.match(nodes[i]["node"]):
            o = nodes[i].get("order", 0)
            before = next((out[j] for j in reversed(mapped) if nodes[j].get("order", 0) < o), None)
            after = next((out[j] for j in mapped if nodes[j].get("order", 0) > o), None)
            if before and after and layers[before].block is not None and \
                    layers[before].block == layers[after].block:
                out[i] = before
    return [x or OTHER for x in out]


def layer_of(spec: ModelSpec, name: str) -> LayerSpec | None:
    return next((x for x in spec.layers if x.name == name), None)
