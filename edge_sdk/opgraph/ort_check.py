"""Does onnxruntime's CPU execution provider really run this graph? Ask it: create a session.

Session creation is the real test (it resolves every node to a kernel or fails). To name *every* missing op, not
just the first one the error mentions, each op type is also looked up in onnxruntime's own kernel registry
(`get_all_opkernel_def`); ops defined as ONNX functions run without a kernel of their own (onnxruntime inlines
them), so they are not counted as missing.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

from ..schemas.graph import GraphNode, OrtCpuCheck


@functools.lru_cache(maxsize=1)
def _cpu_kernels() -> frozenset[str]:
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    out = set()
    for k in C.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider":
            out.add(k.op_name if k.domain in ("", "ai.onnx") else f"{k.domain}:{k.op_name}")
    return frozenset(out)


def _is_function(op: str, opset: int) -> bool:
    import onnx.defs

    domain, _, name = op.rpartition(":")
    try:
        schema = onnx.defs.get_schema(name, opset, domain)
    except Exception:  # noqa: BLE001 - onnx raises SchemaError for unknown ops; unknown means "not a function"
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


# Ops onnxruntime resolves while loading the graph, without a kernel: Constant nodes become initializers.
LOADER_OPS = {"Constant"}


def ops_without_cpu_kernel(nodes: list[GraphNode], opset: int) -> list[str]:
    kernels = _cpu_kernels() | LOADER_OPS
    return sorted({n.op for n in nodes if n.op not in kernels and not _is_function(n.op, opset)})


def check_ort_cpu(path: Path, nodes: list[GraphNode], opset: int) -> OrtCpuCheck:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    error = None
    try:
        ort.InferenceSession(os.fspath(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several pybind classes; the message is the finding
        error = " ".join(str(exc).split())[:400]
    return OrtCpuCheck(onnxruntime_version=ort.__version__, session_created=error is None, error=error,
                       ops_without_kernel=ops_without_cpu_kernel(nodes, opset),
                       machine=f"{platform.machine()} {platform.system()}")
