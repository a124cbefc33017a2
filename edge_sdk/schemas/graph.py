"""The op graph of a model: which operators its exported graphs contain, made once by the `graph` stage and saved.

An `OpGraph` is what the compatibility report reads instead of exporting the model itself: the ONNX graph as
exported and with fixed shapes, a real onnxruntime CPU session check, and (when LiteRT conversion ran) the LiteRT
builtin ops of the really converted model. Node lists keep graph order and which inputs are constants, because op
support lists have per-node conditions ("weights must be constant").
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from .base import Strict


class GraphNode(Strict):
    """One node: its op type ('domain:op' outside the default ONNX domain) and which inputs are constants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: str
    name: str
    const_inputs: frozenset[int] = frozenset()


class OpCount(Strict):
    op: str = Field(description="op type; 'domain:op' outside the default ONNX domain")
    count: int = Field(ge=0)


class GraphOps(Strict):
    """The operators of the model's graph, as exported once for this report."""

    status: Literal["exported", "onnx_file", "stand_in", "not_checked"]
    note: str = Field(description="how the graph was obtained, and its limits")
    opset: int | None = None
    exporter: str | None = None
    nodes: int = 0
    ops: list[OpCount] = Field(default_factory=list, description="as exported (dynamic shapes)")
    static_ops: list[OpCount] = Field(
        default_factory=list, description="shapes fixed (batch 1 x seq_len) and constant-folded by onnxruntime's "
                                          "basic optimizer: what an accelerator compiler sees")
    static_shape: dict[str, int] = Field(default_factory=dict, description="dimension name -> fixed value")
    tflite_ops: list[OpCount] = Field(default_factory=list)
    tflite_status: Literal["converted", "mapped", "not_checked"] = "not_checked"
    tflite_note: str | None = None
    tflite_unmapped: list[str] = Field(default_factory=list, description="ONNX ops with no TFLite builtin")
    seconds: float = 0.0


class OrtCpuCheck(Strict):
    """A real onnxruntime CPU session created on this machine for the exported graph."""

    kind: Literal["measured"] = "measured"
    onnxruntime_version: str
    session_created: bool
    error: str | None = Field(None, description="the session's one-line error when it failed")
    ops_without_kernel: list[str] = Field(default_factory=list,
                                          description="op types with no CPU kernel in onnxruntime's registry")
    machine: str



class OpenvinoCheck(Strict):
    """The exported graph converted by OpenVINO on this machine (its ONNX frontend) and queried on its CPU plugin."""

    kind: Literal["measured"] = "measured"
    openvino_version: str
    converted: bool = Field(description="OpenVINO's ONNX frontend converted every op")
    error: str | None = Field(None, description="the conversion's (or query's) one-line error when it failed")
    ops_not_on_cpu: list[str] = Field(default_factory=list, description="converted op types the CPU plugin "
                                                                        "does not support")
    op_types: int = 0
    nodes: int = 0
    machine: str


class TfliteOps(Strict):
    """The LiteRT builtin ops of the really converted model (fp32, static batch 1 x seq_len), in execution order."""

    ops: list[str]
    interpreter_ok: bool = Field(description="ai-edge-litert's CPU interpreter loaded every op")
    error: str | None = None
    litert_version: str
    note: str


class OpGraph(Strict):
    """`edge-sdk graph MODEL`: made once per (model, sequence length, tool versions), read by `edge-sdk report`."""

    schema_version: Literal[1] = 1
    kind: Literal["op_graph"] = "op_graph"
    key: str = Field(description="cache key: model identity, seq_len, LiteRT mode and tool versions")
    model: str = Field(description="model source as given")
    model_name: str
    seq_len: int = Field(gt=0)
    model_kind: Literal["text", "vision"] | None = None
    info: GraphOps
    exported_nodes: list[GraphNode] = Field(default_factory=list, description="as exported, graph order")
    static_nodes: list[GraphNode] = Field(default_factory=list, description="fixed shapes, constant-folded")
    exported_file: str | None = Field(None, description="the exported ONNX file, relative to the artifact's directory")
    static_file: str | None = None
    ort_cpu: OrtCpuCheck | None = None
    openvino_cpu: OpenvinoCheck | None = Field(None, description="None: openvino not installed where it was made")
    tflite: TfliteOps | None = Field(None, description="None: not converted (tflite_why says why)")
    tflite_why: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    created_at: str
