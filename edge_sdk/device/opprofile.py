"""Per-operator times from the runtime's own profiler, summarised on the device (stdlib json only).

onnxruntime writes a chrome-trace JSON (`SessionOptions.enable_profiling`): one `Session/model_run` event per run
and, inside each, one `Node/<node>_kernel_time` event per executed kernel (op type and provider in `args`). The
profiler cannot be switched on mid-session, so the warm-up runs are in the file too: only node events that fall
inside the counted model_run events (those bench names, else the last `iterations`) are counted. The raw file is
kept (its path is in the summary) so the host can fetch it for chrome://tracing / Perfetto.

LiteRT: ai_edge_litert's and tflite_runtime's Python Interpreter offer no op profiler (per-op timing exists only
in the C++ benchmark_model tool, `--enable_op_profiling`), so a .tflite bench says so instead of inventing numbers.
"""

import json

KERNEL_SUFFIX = "_kernel_time"
PROFILE_DIR_PREFIX = "edge-device-profile-"  # the temp directory bench makes for a trace when given none
LITERT_UNAVAILABLE = ("the LiteRT Python Interpreter (ai_edge_litert / tflite_runtime) exposes no per-op profiler; "
                      "per-op times need LiteRT's C++ benchmark_model tool with --enable_op_profiling")


def summarize_ort_trace(path, iterations, counted=None):
    """{"runs_in_trace", "profiled_runs", "run_us_mean", "node_us_per_run", "nodes": [{"node", "op_type",
    "provider", "total_us", "count", "per_run_us", "calls_per_run", "order"}]} over the last `iterations` runs, or
    over the runs whose indices (in time order, warm-up included) are `counted` when the trace holds them all;
    nodes sorted by time, most first. `order` is the node's position in the first counted run (execution order)."""
    with open(path) as f:
        events = json.load(f)
    if isinstance(events, dict):  # {"traceEvents": [...]} in some versions
        events = events.get("traceEvents") or []
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e.get("ts", 0))
    if counted and max(counted) < len(runs):
        kept = [runs[i] for i in counted]
    else:
        kept = runs[-iterations:] if iterations and len(runs) > iterations else runs
    windows = [(r["ts"], r["ts"] + r.get("dur", 0)) for r in kept]
    nodes = {}
    first_run_order = {}
    for e in sorted((e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith(KERNEL_SUFFIX)),
                    key=lambda e: e.get("ts", 0)):
        ts = e.get("ts", 0)
        run = next((i for i, (lo, hi) in enumerate(windows) if lo <= ts <= hi), None)
        if run is None:
            continue
        name = e["name"][:-len(KERNEL_SUFFIX)]
        args = e.get("args") or {}
        row = nodes.get(name)
        if row is None:
            row = nodes[name] = {"node": name, "op_type": args.get("op_name"), "provider": args.get("provider"),
                                 "total_us": 0, "count": 0}
        row["total_us"] += e.get("dur", 0)
        row["count"] += 1
        if run == 0 and name not in first_run_order:
            first_run_order[name] = len(first_run_order)
    n = len(kept)
    rows = []
    for name, row in nodes.items():
        row["per_run_us"] = round(row["total_us"] / float(n), 3) if n else None
        row["calls_per_run"] = round(row["count"] / float(n), 3) if n else None
        row["order"] = first_run_order.get(name, len(first_run_order))
        rows.append(row)
    rows.sort(key=lambda r: -r["total_us"])
    node_total = sum(r["total_us"] for r in rows)
    return {
        "runs_in_trace": len(runs),
        "profiled_runs": n,
        "run_us_mean": round(sum(r.get("dur", 0) for r in kept) / float(n), 3) if n else None,
        "node_us_per_run": round(node_total / float(n), 3) if n else None,
        "nodes": rows,
    }
