"""Which of the graph's ops run on each runtime's unit, and which would fall back (NPU/DLA/GPU/TPU -> CPU/GPU)?

Silent fallback is the most common complaint about edge toolchains (an NPU delegate quietly runs half the graph on
the CPU), so every op that leaves the accelerator is listed by name and node count. Sources, in order of trust:

- onnxruntime CPU EP: a real session created here (`check: session`);
- OpenVINO CPU: the graph really converted by OpenVINO here and queried on its CPU plugin (`check: session`);
- runtimes with a shipped op list (`check: data`): checked node by node on the fixed-shape graph (ONNX lists) or
  on its TFLite mapping (TFLite lists), including per-node conditions such as "weights must be constant";
- LiteRT on a CPU (XNNPACK): every builtin has a CPU kernel, so only ops with no builtin at all are flagged;
- anything else: `unknown`, said plainly, never counted as supported.
"""

from __future__ import annotations

from collections import defaultdict

from ..schemas.profile import ComputeUnit, Runtime
from ..schemas.graph import GraphNode, OpGraph, TfliteOps
from .op_data import PartialOp, SupportList, support_for, tflite_mapping
from ..schemas.report import OpIssue, OrtCpuCheck, RuntimeCoverage
from .tflite_map import TfliteNode

ACCELERATOR_KINDS = {"gpu", "npu", "dla", "tpu", "dsp"}


def _base(rt: Runtime, unit: ComputeUnit, is_plan: bool) -> dict:
    return dict(runtime=rt.name, provider=rt.provider, unit=rt.unit, unit_kind=unit.kind, format=rt.format,
                profile_version=rt.version, is_plan_runtime=is_plan)


def _ops_text(issues: list[OpIssue]) -> str:
    """Every op, by name and node count: a summary that says "and 5 more" hides exactly what users look for."""
    return ", ".join(f"{i.op} ×{i.nodes}" for i in issues if i.status != "after_first_unsupported")


def _ort_cpu(rt: Runtime, unit: ComputeUnit, is_plan: bool, graph: OpGraph, ort: OrtCpuCheck) -> RuntimeCoverage:
    nodes = graph.exported_nodes
    missing = set(ort.ops_without_kernel)
    per_op: dict[str, int] = defaultdict(int)
    for n in nodes:
        if n.op in missing:
            per_op[n.op] += 1
    issues = [OpIssue(op=op, nodes=k, status="unsupported", reason=f"no CPU kernel in onnxruntime "
                                                                  f"{ort.onnxruntime_version}")
              for op, k in sorted(per_op.items())]
    if not ort.session_created and not issues:
        issues = [OpIssue(op="(graph)", nodes=0, status="unsupported", reason=ort.error or "session creation failed")]
    types = {n.op for n in nodes}
    notes = [f"a real onnxruntime {ort.onnxruntime_version} session was created on this machine ({ort.machine})"
             + (f"; the device pins onnxruntime {rt.version}: its build may differ" if rt.version
                and not ort.onnxruntime_version.startswith(rt.version) else "")]
    notes.append("checked on the fp32 graph; quantization adds QDQ / MatMulInteger ops, which the build checks")
    if ort.session_created:
        summary = f"all {len(types)} op types run: session created"
        verdict = "full"
    else:
        summary = f"session fails: {ort.error}"
        verdict = "fails"
    return RuntimeCoverage(**_base(rt, unit, is_plan), check="session", op_level="onnx", graph="exported",
                           verdict=verdict, summary=summary, op_types=len(types),  # type: ignore[arg-type]
                           op_types_supported=len(types - missing), nodes=len(nodes),
                           nodes_on_unit=len(nodes) - sum(per_op.values()), issues=issues,
                           on_unsupported="fails", fallback_to=None, silent=False, notes=notes)


def _openvino_cpu(rt: Runtime, unit: ComputeUnit, is_plan: bool, graph: OpGraph) -> RuntimeCoverage:
    """From OpenVINO's real conversion of the exported graph and its CPU plugin's query (opgraph/openvino_check)."""
    ov = graph.openvino_cpu
    assert ov is not None
    nodes = graph.exported_nodes
    notes = [f"converted by a real OpenVINO {ov.openvino_version} (ONNX frontend) and queried on its CPU plugin on "
             f"this machine ({ov.machine})" + (f"; the device pins OpenVINO {rt.version}: its build may differ"
                                               if rt.version and not ov.openvino_version.startswith(rt.version)
                                               else ""),
             "a build converts from PyTorch and quantizes with NNCF; the converted op set is the same"]
    if not ov.converted:
        issues = [OpIssue(op="(graph)", nodes=0, status="unsupported", reason=ov.error or "conversion failed")]
        summary, verdict, ok_types = f"OpenVINO cannot convert the graph: {ov.error}", "fails", 0
    elif ov.ops_not_on_cpu or ov.error:
        issues = [OpIssue(op=op, nodes=0, status="unsupported", reason="converted, but the CPU plugin has no "
                                                                      "implementation") for op in ov.ops_not_on_cpu]
        if ov.error:
            issues.append(OpIssue(op="(graph)", nodes=0, status="unsupported", reason=ov.error))
        summary = f"the CPU plugin cannot run: {_ops_text(issues)}"
        verdict, ok_types = "fails", ov.op_types - len(ov.ops_not_on_cpu)
    else:
        issues, verdict, ok_types = [], "full", ov.op_types
        summary = f"all {ov.op_types} OpenVINO op types run on the CPU plugin: converted and queried"
    return RuntimeCoverage(**_base(rt, unit, is_plan), check="session", op_level="onnx", graph="exported",
                           verdict=verdict, summary=summary, op_types=ov.op_types,  # type: ignore[arg-type]
                           op_types_supported=ok_types, nodes=len(nodes),
                           nodes_on_unit=len(nodes) if verdict == "full" else 0, issues=issues,
                           on_unsupported="fails", fallback_to=None, silent=False, notes=notes)


def _node_ok(lst: SupportList, op: str, node: GraphNode) -> tuple[str | None, str]:
    """(None, note) when the node maps; (status, reason) when it does not."""
    listed, entry = lst.entry(op)
    if not listed:
        return "unsupported", f"not in the {lst.title} list"
    if isinstance(entry, PartialOp):
        if entry.const_inputs and not set(entry.const_inputs) <= node.const_inputs:
            return "partial", entry.note
    return None, entry if isinstance(entry, str) else ""


def _older_export(lst: SupportList, graph: OpGraph, issues: list[OpIssue]) -> int | None:
    """The ONNX opset at which every op of the graph runs on this runtime, when the only refused ops are ones an
    older-opset export decomposes into listed ops (TensorRT 8 and LayerNormalization); None when there is none."""
    refused = {i.op for i in issues if i.status != "after_first_unsupported"}
    if not refused or not refused <= set(lst.decomposed):
        return None
    supported = {op for op, entry in lst.ops.items() if not isinstance(entry, PartialOp)}
    if not all(set(lst.decomposed[op].into) <= supported for op in refused):
        return None
    # the newest opset that decomposes them: the rest of the graph is written as before (an older one can fail
    # to export at all: the attention of transformers models needs opset 14)
    opset = min(lst.decomposed[op].since_opset for op in refused) - 1
    if opset < 13:  # the oldest opset edge-sdk's export writes (ExportOnnxConfig)
        return None
    try:  # every other op of the graph must exist at that opset, or the export would write it differently too
        from onnx.defs import has
    except ImportError:  # pragma: no cover - onnx is a dependency
        return None
    rest = {n.op for n in graph.static_nodes} - refused
    return opset if all(":" in op or has(op, opset) for op in rest) else None


def _data_check(rt: Runtime, unit: ComputeUnit, is_plan: bool, graph: OpGraph, tfl: list[TfliteNode],
                lst: SupportList, applies, version_note: str | None,
                converted: TfliteOps | None) -> RuntimeCoverage:
    tflite = lst.op_set == "tflite"
    items: list[tuple[str | None, GraphNode]] = ([(m.builtin, m.source) for m in tfl] if tflite
                                            else [(n.op, n) for n in graph.static_nodes])
    issues: dict[tuple[str, str], list] = {}
    first_bad: str | None = None
    on_unit = 0
    types: set[str] = set()
    bad_types: set[str] = set()
    for op, node in items:
        label = op if op is not None else f"{node.op} (no TFLite builtin)"
        types.add(label)
        if first_bad is not None and lst.first_unsupported_stops:
            status, reason = "after_first_unsupported", (f"after the first unsupported op ({first_bad}): "
                                                         f"{lst.title} partitions the graph only once")
        elif op is None:
            status, reason = "no_builtin", ("no LiteRT builtin: needs a custom op or the Flex delegate "
                                            "(Select TF ops), which run on the CPU")
        else:
            status, reason = _node_ok(lst, op, node)
        if status is None:
            on_unit += 1
            continue
        if first_bad is None and status != "after_first_unsupported":
            first_bad = label
        bad_types.add(label)
        key = (label, status)
        issues.setdefault(key, [0, reason])[0] += 1
    out_issues = sorted((OpIssue(op=k[0], nodes=v[0], status=k[1], reason=v[1])  # type: ignore[arg-type]
                         for k, v in issues.items()), key=lambda i: (i.status == "after_first_unsupported", -i.nodes))
    n = len(items)
    if not out_issues:
        verdict = "full"
    elif applies.on_unsupported == "fails":
        verdict = "fails"
    elif on_unit == 0:
        verdict = "none"
    else:
        verdict = "partial"
    where = f"the {unit.name}" if unit.kind in ACCELERATOR_KINDS else f"the {unit.name} ({unit.kind})"
    level = ("builtins" + ("" if converted else " (mapped, not converted)")) if tflite else "op types"
    stopped = [i for i in out_issues if i.status == "after_first_unsupported"]
    if verdict == "full":
        summary = f"all {len(types)} {level} run on {where}"
    elif verdict == "fails":
        summary = f"{rt.name} refuses the graph: {_ops_text(out_issues)} unsupported"
    elif stopped:
        after = sum(i.nodes for i in stopped)
        summary = (f"{on_unit} of {n} nodes run on {where}; the first unsupported op ({first_bad}) and the {after} "
                   f"node{'s' * (after != 1)} after it run on {applies.fallback_to or 'another unit'}"
                   + (" — silently" if applies.silent else ""))
    else:
        dest = applies.fallback_to or "another unit"
        summary = (f"{on_unit} of {n} nodes run on {where}; {_ops_text(out_issues)} fall back to {dest}"
                   + (" — silently" if applies.silent else ""))
    notes = list(lst.notes)
    if applies.note:
        notes.append(applies.note)
    if lst.requires_static_shapes:
        notes.append("needs fixed shapes: checked on the fixed-shape graph")
    if graph.info.opset and lst.max_opset and graph.info.opset > lst.max_opset:
        notes.append(f"the graph uses opset {graph.info.opset}; this list covers opset <= {lst.max_opset}: "
                     f"re-export with an older opset for this runtime")
    if lst.precisions and set(lst.precisions) <= {"int8", "int16", "int4"}:
        notes.append(f"assumes a fully {'/'.join(lst.precisions)}-quantized model: float ops do not map at all")
    if tflite:
        notes.append("TFLite builtins read from the converted .tflite" if converted else
                     f"TFLite builtins mapped from the ONNX graph ({tflite_mapping().file}), not converted")
    graph_used = ("tflite_converted" if converted else "tflite_mapped") if tflite else "static"
    older = _older_export(lst, graph, out_issues) if out_issues and not tflite else None
    if older is not None:
        notes.append(f"exported at ONNX opset {older}, every op runs: "
                     + "; ".join(f"{op} is then written as {', '.join(lst.decomposed[op].into)}"
                                 for op in sorted({i.op for i in out_issues})))
    return RuntimeCoverage(**_base(rt, unit, is_plan), check="data", op_level=lst.op_set, graph=graph_used,
                           data_file=lst.file, data_title=lst.title,
                           data_version=lst.runtime_version, source_url=lst.source_url, confidence=lst.confidence,
                           version_note=version_note, verdict=verdict, summary=summary,  # type: ignore[arg-type]
                           op_types=len(types), op_types_supported=len(types - bad_types), nodes=n,
                           nodes_on_unit=on_unit, issues=out_issues, on_unsupported=applies.on_unsupported,
                           fallback_to=applies.fallback_to, silent=applies.silent,
                           fix="; ".join(f"{op}: {lst.fixes[op]}" for op in sorted({i.op for i in out_issues})
                                         if op in lst.fixes) or None, export_opset=older, notes=notes)


def _litert_cpu(rt: Runtime, unit: ComputeUnit, is_plan: bool, tfl: list[TfliteNode],
                converted: TfliteOps | None) -> RuntimeCoverage:
    types = {m.builtin for m in tfl if m.builtin}
    if converted is not None:
        ok = converted.interpreter_ok
        return RuntimeCoverage(**_base(rt, unit, is_plan), check="session", op_level="tflite",
                               graph="tflite_converted", verdict="full" if ok else "fails",
                               summary=(f"all {len(types)} builtins load: a LiteRT interpreter was created for the "
                                        f"converted file" if ok
                                        else f"LiteRT cannot load the converted file: {converted.error}"),
                               op_types=len(types), op_types_supported=len(types) if ok else 0, nodes=len(tfl),
                               nodes_on_unit=len(tfl) if ok else 0, on_unsupported="fails",
                               notes=[f"a real ai-edge-litert {converted.litert_version} interpreter (built-in CPU "
                                      f"kernels, no default delegate) on this machine; XNNPACK takes the ops it "
                                      f"supports, the rest stay on the same cores"])
    per: dict[str, int] = defaultdict(int)
    for m in tfl:
        if m.builtin is None:
            per[m.source.op] += 1
    issues = [OpIssue(op=f"{op} (no TFLite builtin)", nodes=k, status="no_builtin",
                      reason="needs a custom op or the Flex delegate (Select TF ops), rarely present on devices")
              for op, k in sorted(per.items())]
    summary = (f"all {len(types)} builtins have LiteRT CPU kernels (XNNPACK or reference)" if not issues
               else f"the conversion needs non-builtin ops: {_ops_text(issues)}")
    return RuntimeCoverage(**_base(rt, unit, is_plan), check="data", op_level="tflite", graph="tflite_mapped",
                           data_file=tflite_mapping().file, data_title=tflite_mapping().title,
                           source_url=tflite_mapping().source_url, confidence=tflite_mapping().confidence,
                           verdict="fails" if issues else "full", summary=summary, op_types=len(types) + len(per),
                           op_types_supported=len(types), nodes=len(tfl), nodes_on_unit=len(tfl) - sum(per.values()),
                           issues=issues, on_unsupported="fails", notes=[
                               "ops XNNPACK lacks run in LiteRT's built-in CPU kernels on the same cores (no unit "
                               "change)", "TFLite builtins mapped from the ONNX graph, not converted"])


def runtime_coverage(rt: Runtime, unit: ComputeUnit, *, is_plan: bool, graph: OpGraph, tfl: list[TfliteNode],
                     ort: OrtCpuCheck | None, tensorrt_version: str | None = None,
                     converted: TfliteOps | None = None) -> RuntimeCoverage:
    """Coverage of one profile runtime. `tensorrt_version`: the TensorRT the device ships, which is what
    onnxruntime's TensorRT EP runs on it when the EP entry pins no version of its own. `converted`: the real
    .tflite conversion when there was one (else `tfl` is the mapping)."""
    base = _base(rt, unit, is_plan)
    if graph.info.status == "not_checked":
        return RuntimeCoverage(**base, check="none", verdict="unknown", summary=graph.info.note)
    if rt.name == "pytorch":
        return RuntimeCoverage(**base, check="none", verdict="not_applicable",
                               summary="eager PyTorch runs the model's own code: the baseline, not an export target")
    if rt.name == "onnxruntime" and rt.provider == "CPUExecutionProvider" and ort is not None:
        return _ort_cpu(rt, unit, is_plan, graph, ort)
    if rt.name == "openvino" and rt.provider == "CPU" and graph.openvino_cpu is not None:
        return _openvino_cpu(rt, unit, is_plan, graph)
    version = rt.version
    if rt.provider == "TensorrtExecutionProvider" and version is None:
        version = tensorrt_version
    found = support_for(rt.name, rt.provider, version)
    if found is not None:
        lst, applies, vnote = found
        return _data_check(rt, unit, is_plan, graph, tfl, lst, applies, vnote, converted)
    if rt.format == "tflite" and unit.kind == "cpu":
        return _litert_cpu(rt, unit, is_plan, tfl, converted)
    why = {"CUDAExecutionProvider": "the CUDA EP implements most ONNX ops; nodes it lacks run on the CPU EP"}
    return RuntimeCoverage(**base, check="none", verdict="unknown",
                           summary=f"not checked: no op-support list ships for {rt.name}/{rt.provider}"
                                   + (f" ({why[rt.provider]})" if rt.provider in why else ""))
