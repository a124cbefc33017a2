"""`calibrate --suite DIR`: time the calibration kernels the host made (see edge_sdk/calibration/suite.py).

Each kernel of DIR/suite.json is loaded in its runtime's engine and run on seeded random inputs: 2 warm-up runs,
then timed runs until `--min-time` seconds or `--max-iters` runs (at least 5). The whole list is timed in `--rounds`
interleaved rounds, and a kernel's `median_ms` is the median of its per-round medians: on a shared machine a burst
of someone else's load then hits one round of a kernel, not the kernel (measured on a shared 2-vCPU VM: single-round
medians of the same GEMM 1.6-2.5× apart). A load that lasts minutes hits every round alike (measured: every GEMM of
one calibration 1.7-2× slower), so after each timing the suite's `reference` kernel (a mid-size GEMM) is timed for
10 ms, and each round median is divided by the reference's slowdown at that moment against its quiet level: the
calibration describes the machine, not its neighbours. One `progress` event per kernel and round (with its median,
p10, p90 in ms so far) as it finishes, then the final `result` event with every timing and this machine's facts
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
    p.add_argument("--min-time", type=float, default=0.1, dest="min_time_s",
                   help="seconds of timed runs per kernel and round")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds over the kernel list (the median of their medians is kept)")
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


REF_TIME_S = 0.01
REF_BASELINE_QUANTILE = 0.1
#: threads kept spinning between runs (see run()): a kernel timed alone then costs what it costs inside a model
ONNXRUNTIME_KERNEL_CONFIG = {"session.force_spinning_stop": "0"}
PROBE_TIME_S = 0.3
PROBE_WARMUP_S = 0.2


def _reference_run(suite_dir, ref, fmt, provider, threads, config):
    """The suite's reference kernel loaded and prepared on its seeded inputs: one run per call."""
    import numpy as np

    eng = open_engine(os.path.join(suite_dir, ref["file"]), fmt, provider, threads, runtime_config=config or None)
    rng = np.random.default_rng(0)
    return eng.prepare(dict((name, rng.standard_normal(shape).astype(np.float32))
                            for name, shape in ref["inputs"].items()))


def reference_probe(suite_dir, threads=None):
    """The suite's reference GEMM timed now, as calibrate times it ({"kernel", "ms": median of PROBE_TIME_S seconds of
    runs}), so that `bench --probe-suite` can say how much slower than calibrated the machine runs; {"reason"} when
    the suite or its onnxruntime is not here. A load average says nothing of a VM's neighbours; this does."""
    try:
        with open(os.path.join(suite_dir, "suite.json")) as f:
            suite = json.load(f)
        ref = next(k for k in suite["kernels"] if k.get("name") == suite.get("reference"))
        run = _reference_run(suite_dir, ref, "onnx", None, threads, ONNXRUNTIME_KERNEL_CONFIG)
    except (IOError, OSError, ValueError, KeyError, TypeError, StopIteration, DeviceError) as exc:
        return {"reason": "no reference kernel in %s (%s)" % (suite_dir, " ".join(str(exc).split())[:200])}
    _time_kernel(run, PROBE_WARMUP_S, 1000)  # in a fresh process the first runs are slow (measured 1.7x)
    times = _time_kernel(run, PROBE_TIME_S, 1000)
    return {"kernel": ref["name"], "ms": round(_percentile(times, 0.5), 5)}


def _row(k, pooled, medians, raw=None):
    row = {"name": k["name"], "median_ms": _percentile(sorted(medians), 0.5), "p10_ms": _percentile(pooled, 0.1),
           "p90_ms": _percentile(pooled, 0.9), "iterations": len(pooled), "rounds": len(medians),
           "round_medians_ms": [round(m, 5) for m in medians]}
    if raw is not None:
        row["raw_round_medians_ms"] = [round(m, 5) for m in raw]
    return row


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
    # OpenVINO compiles at f32 as bundles do (on CPUs with AVX512_BF16/AMX it would otherwise pick bf16 by itself);
    # a kernel's own runtime_config (an OpenVINO layer's fixed shape) adds to that
    base_config = {"INFERENCE_PRECISION_HINT": "f32"} if runtime_name == "openvino" else {}
    if runtime_name == "onnxruntime":
        # A kernel timed alone pays the pool threads' wake-up at every run (bundles' sessions stop spinning after a
        # run, engines/base.py); inside a model the next kernel finds them spinning. Timed with the threads kept
        # spinning, a kernel costs what it costs in a model (measured: a 16x384x1536 fp32 GEMM 56 µs instead of 85).
        base_config = dict(ONNXRUNTIME_KERNEL_CONFIG)
    engines = {}
    runtime = {}
    rounds = max(1, int(args.rounds))
    pooled = [[] for _ in todo]
    medians = [[] for _ in todo]
    loads = [[] for _ in todo]  # the reference kernel's median right after each timing
    ref = next((k for k in todo if k.get("name") == suite.get("reference")), None)
    ref_run = None
    if ref is not None:
        ref_run = _reference_run(args.suite, ref, fmt_override or ref.get("format"), args.provider, args.threads,
                                 base_config)
    done = 0
    for _ in range(rounds):
        for i, k in enumerate(todo):
            f = os.path.join(args.suite, k["file"])
            config = dict(base_config, **(k.get("runtime_config") or {}))
            key = (f, json.dumps(config, sort_keys=True))  # one IR compiled at several fixed shapes
            if key not in engines:
                engines[key] = open_engine(f, k.get("format") if k.get("format") == "openvino" else
                                           fmt_override or k.get("format"), args.provider, args.threads,
                                           runtime_config=config or None)
            eng = engines[key]
            rng = np.random.default_rng(i)  # the same inputs every round, without keeping them all in memory
            dtypes = k.get("dtypes") or {}
            feeds = dict((name, np.ones(shape, dtypes[name]) if name in dtypes else
                          rng.standard_normal(shape).astype(np.float32)) for name, shape in k["inputs"].items())
            times = _time_kernel(eng.prepare(feeds), args.min_time_s, args.max_iters)
            runtime = {"runtime": eng.runtime, "version": eng.version, "provider": eng.provider_used,
                       "fallback_reason": eng.fallback_reason}
            pooled[i] = sorted(pooled[i] + times)
            medians[i].append(_percentile(times, 0.5))
            if ref_run is not None:
                loads[i].append(_percentile(_time_kernel(ref_run, REF_TIME_S, 50), 0.5))
            done += 1
            emit("progress", done=done, total=len(todo) * rounds, unit="kernels", kernel=_row(k, pooled[i], medians[i]))
            if len(engines) > 4:  # keep memory flat on small boards: weights of old kernels are not needed again
                engines.pop(next(iter(engines)))
    every = sorted(x for row in loads for x in row)
    best = _percentile(every, REF_BASELINE_QUANTILE) if every else None
    out = []
    for i, k in enumerate(todo):
        # the reference kernel's slowdown next to each timing (against its quiet level, the 10th percentile of all
        # its timings: the very fastest of hundreds is luck, not the machine) is the share of the CPU someone else
        # took then: each round's median is divided by it, so a sustained neighbour does not slow every kernel
        factors = [x / best for x in loads[i]] if best else []
        out.append(_row(k, pooled[i], [m / f for m, f in zip(medians[i], factors)] if factors else medians[i],
                        raw=medians[i] if factors else None))
    return {"kernels": out, "facts": probe("."), "threads": args.threads, **runtime}
