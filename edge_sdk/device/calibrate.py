"""`calibrate --suite DIR`: time the calibration kernels the host made (see edge_sdk/calibration/suite.py).

Each kernel of DIR/suite.json is loaded in its runtime's engine and run on seeded random inputs: 2 warm-up runs,
then timed runs until `--min-time` seconds or `--max-iters` runs (at least 5). One `progress` event per kernel
(with its median, p10, p90 in ms) as it finishes, then the final `result` event with every timing and this machine's facts
(probe.py), which the host turns into a device fingerprint. Runs under the same deadline watchdog as `bench`.
"""

import json
import os
import time

from .engines import open_engine
from .errors import EXIT_BAD_INPUT, DeviceError
from .events import emit


def add_arguments(p):
    p.add_argument("--suite", required=True, help="directory holding suite.json and the kernel files")
    p.add_argument("--threads", type=int, default=None, help="runtime CPU threads (default: the runtime's)")
    p.add_argument("--provider", default=None, help="execution provider / delegate (default: CPU)")
    p.add_argument("--runtime", default=None, choices=["onnxruntime", "openvino"],
                   help="run the (ONNX) kernels in this runtime (default: the kernel's own format's runtime); "
                        "openvino reads ONNX directly")
    p.add_argument("--precisions", default=None, help="comma-separated kernel precisions to run (default: all)")
    p.add_argument("--min-time", type=float, default=0.25, dest="min_time_s", help="seconds of timed runs per kernel")
    p.add_argument("--max-iters", type=int, default=200, help="timed runs per kernel at most")
    p.add_argument("--only", default=None, help="comma-separated kernel kinds to run (default: all)")
    p.add_argument("--deadline", type=float, default=900.0, dest="deadline_s", help="seconds before stopping")


def _percentile(sorted_ms, q):
    if not sorted_ms:
        return None
    i = (len(sorted_ms) - 1) * q
    lo = int(i)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (i - lo)


def _time_kernel(run, min_time_s, max_iters):
    for _ in range(2):
        run()
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (len(times) < max_iters and time.perf_counter() - start < min_time_s):
        t0 = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    return times


def run(args):
    import numpy as np

    from .probe import probe

    path = os.path.join(args.suite, "suite.json")
    try:
        with open(path) as f:
            suite = json.load(f)
        kernels = suite["kernels"]
    except (IOError, OSError, ValueError, KeyError, TypeError) as exc:
        raise DeviceError("%s: not a calibration suite (%s)" % (path, exc), EXIT_BAD_INPUT)
    only = set(args.only.split(",")) if args.only else None
    precisions = set(args.precisions.split(",")) if args.precisions else None
    runtime_name = args.runtime or "onnxruntime"
    todo = [k for k in kernels if (only is None or k.get("kind") in only)
            and (precisions is None or k.get("precision") in precisions)
            and runtime_name in k.get("runtimes", [runtime_name])]  # runtime-specific kernels (OpenVINO's own IR)
    fmt_override = "openvino" if args.runtime == "openvino" else None
    rng = np.random.default_rng(0)
    engines = {}
    out = []
    runtime = {}
    for i, k in enumerate(todo):
        f = os.path.join(args.suite, k["file"])
        if f not in engines:
            engines[f] = open_engine(f, k.get("format") if k.get("format") == "openvino" else
                                     fmt_override or k.get("format"), args.provider, args.threads)
        eng = engines[f]
        dtypes = k.get("dtypes") or {}
        feeds = dict((name, np.ones(shape, dtypes[name]) if name in dtypes else rng.standard_normal(shape)
                      .astype(np.float32)) for name, shape in k["inputs"].items())
        times = _time_kernel(eng.prepare(feeds), args.min_time_s, args.max_iters)
        runtime = {"runtime": eng.runtime, "version": eng.version, "provider": eng.provider_used,
                   "fallback_reason": eng.fallback_reason}
        row = {"name": k["name"], "median_ms": _percentile(times, 0.5), "p10_ms": _percentile(times, 0.1),
               "p90_ms": _percentile(times, 0.9), "iterations": len(times)}
        out.append(row)
        emit("progress", done=i + 1, total=len(todo), unit="kernels", kernel=row)
        if len(engines) > 4:  # keep memory flat on small boards: weights of old kernels are not needed again
            engines.pop(next(iter(engines)))
    return {"kernels": out, "facts": probe("."), "threads": args.threads, **runtime}
