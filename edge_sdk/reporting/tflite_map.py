"""Which LiteRT (TFLite) builtin ops would the graph become? Mapped from the fixed-shape ONNX graph.

There is no `.tflite` to read when the report runs (edge-sdk's LiteRT export is a build step and needs the
converter), so TFLite delegates are checked against the builtins that the ONNX ops *map* to, using the shipped
table `data/op_support/onnx_to_tflite.yaml`. The report labels these op lists "mapped, not converted".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..schemas.graph import GraphNode
from .op_data import ConditionalMap, tflite_mapping
from ..schemas.report import OpCount


@dataclass(frozen=True)
class TfliteNode:
    builtin: str | None   # None: the ONNX op has no builtin equivalent
    source: GraphNode


def map_nodes(nodes: list[GraphNode]) -> list[TfliteNode]:
    table = tflite_mapping().map
    out: list[TfliteNode] = []
    for n in nodes:
        entry = table.get(n.op)
        if entry is None:
            out.append(TfliteNode(None, n))
            continue
        if isinstance(entry, ConditionalMap):
            entry = entry.then if entry.const_input in n.const_inputs else entry.else_
        for b in entry:
            out.append(TfliteNode(b, n))
    return out


def count_builtins(mapped: list[TfliteNode]) -> list[OpCount]:
    c = Counter(m.builtin for m in mapped if m.builtin)
    return [OpCount(op=k, count=v) for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]


def unmapped_ops(mapped: list[TfliteNode]) -> list[str]:
    return sorted({m.source.op for m in mapped if m.builtin is None})
