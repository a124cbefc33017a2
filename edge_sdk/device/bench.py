"""`bench`: time the bundle's model on this device, per (input kind, batch size), and report one result line.

    python3 -m edge_device bench --bundle DIR [--artifact PATH] [--warmup 10] [--iterations 100 | --duration 30]
                                 [--batch 1,8] [--threads N] [--inputs auto|real|padded|all] [--deadline-s S]
                                 [--repeat K] [--profile-ops [--profile-iterations 20] [--profile-dir DIR]]

Output: JSON lines on stdout (events.py):
  {"event": "start", ...}
  {"event": "progress", "done": D, "total": T, "unit": "iterations" | "seconds"}   about every 10 %
  {"event": "result", ..., "runs": [{"inputs", "batch", "shapes", "iterations", "wall_s",
                                     "latencies_ms": [raw per-iteration latencies]} | {..., "skipped": why}]}
  {"event": "error", "message": "...", "code": N}
Each (input kind, batch size) pair is one run: its own warm-up, then --iterations timed runs, or timed runs for
--duration seconds. `--repeat K` does all of it K times, each round with a fresh runtime session; a run's
`latencies_ms` then holds every round's samples in order and `round_p50_ms` each round's median. Before the first
round the machine's state is recorded (`machine`: governor, clocks, temperatures, load; machine.py) with warnings.
`--profile-ops` adds one more pass AFTER the timed rounds, so the profiler never perturbs the latency statistics: a
fresh session with the runtime's op profiler on, warm-up, then --profile-iterations runs of one pair (padded inputs
at the plan's batch when measured, else the first pair that ran) in blocks that alternate with blocks of clean runs
(their p50 is `clean_p50_ms`, the end-to-end time the layer sum is compared with); `op_profile` summarises its
trace (opprofile.py) and names the raw file. Exit codes: see errors.py (2 bad arguments or bundle, 3 integrity,
4 runtime, 124 deadline).
"""

import argparse
import os
import platform
import tempfile
import time

from . import bench_decoder
from .calibrate import reference_probe
from .engines import open_engine
from .errors import EXIT_RUNTIME, DeviceError
from .events import emit, utc_now
from .inputs import INPUT_KINDS, load_sample_inputs, make_feed, match_inputs, select_kinds
from .integrity import choose_artifact, content_id, read_manifest, verify_model_files
from .machine import machine_state, thermal_zones
from .opprofile import PROFILE_DIR_PREFIX, summarize_ort_trace
from .power import Tegrastats
from .stats import board_model, cpu_model, current_rss_mb, median, peak_rss_mb, ru_maxrss_mb

RUNNER_VERSION = "1"


# ----------------------------------------------------------------------------------------------- arguments


def _batches(text):
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated positive integers, got %r" % text)
    if not sizes or any(b < 1 for b in sizes):
        raise argparse.ArgumentTypeError("expected comma-separated positive integers, got %r" % text)
    return sizes


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
        if value <= 0:
            raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
        return value
    return parse


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError("expected an integer >= 0, got %r" % text)
    return value


def add_arguments(p):
    p.add_argument("--bundle", required=True, help="bundle directory (holds manifest.json)")
    p.add_argument("--artifact", help="model file to run, relative to the bundle (default: the first artifact)")
    p.add_argument("--warmup", type=_non_negative_int, default=10, help="untimed runs before each timed series")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--iterations", type=positive(int), help="timed runs per batch size (default 100)")
    g.add_argument("--duration", type=positive(float), help="seconds of timed runs per batch size")
    p.add_argument("--batch", type=_batches, default=[1], help="batch sizes, e.g. 1,8")
    p.add_argument("--threads", type=positive(int), help="runtime CPU threads (default: the runtime's choice)")
    p.add_argument("--inputs", choices=("auto",) + INPUT_KINDS + ("all",), default="auto",
                   help="which sample inputs: auto = padded if the bundle has them, else real")
    p.add_argument("--deadline-s", type=positive(float), help="give up (exit 124) after this many seconds")
    p.add_argument("--repeat", type=positive(int), default=1,
                   help="independent rounds, each with a fresh runtime session (their medians show the spread)")
    p.add_argument("--profile-ops", action="store_true",
                   help="after the timed rounds, one profiled pass: per-op times from the runtime's own profiler")
    p.add_argument("--profile-iterations", type=positive(int), default=20, help="runs in the profiled pass")
    p.add_argument("--profile-dir", help="where the runtime writes its trace (default: a new temp directory)")
    p.add_argument("--probe-suite", help="a calibration suite directory: its reference GEMM is timed before and after "
                   "the run (machine.reference_probe), to compare the machine's speed with its calibration's")
    p.add_argument("--tegrastats-interval-ms", type=positive(int), default=100, help=argparse.SUPPRESS)
    bench_decoder.add_arguments(p)  # --engine, --new-tokens (decoder bundles)


# ----------------------------------------------------------------------------------------------- measuring


class Progress(object):
    def __init__(self, total, unit):
        self.total = total
        self.unit = unit
        self.step = total / 10.0
        self.next = self.step
        self.done = 0

    def add(self, amount):
        self.done += amount
        if self.done + 1e-9 >= self.next:
            while self.next <= self.done + 1e-9:
                self.next += self.step
            done = self.done if self.unit == "iterations" else round(min(self.done, self.total), 3)
            emit("progress", done=done, total=self.total, unit=self.unit)


class _Silent(object):
    def add(self, amount):
        pass


def time_series(run, warmup, iterations, duration_s, progress):
    """(per-iteration latencies in ms, wall seconds of the timed part), after `warmup` untimed runs."""
    for _ in range(warmup):
        run()
    clock = time.perf_counter_ns
    latencies = []
    start = clock()
    if duration_s:
        end = start + int(duration_s * 1e9)
        last = start
        while True:
            t0 = clock()
            run()
            t1 = clock()
            latencies.append(round((t1 - t0) / 1e6, 4))
            progress.add((min(t1, end) - last) / 1e9)
            last = min(t1, end)
            if t1 >= end:
                break
    else:
        for _ in range(iterations):
            t0 = clock()
            run()
            t1 = clock()
            latencies.append(round((t1 - t0) / 1e6, 4))
            progress.add(1)
    return latencies, round((clock() - start) / 1e9, 4)


def plan_prediction(manifest):
    """What the bundle's plan predicted (latency at its batch and seq_len), for the caller to compare."""
    plan = manifest.get("plan") if isinstance(manifest.get("plan"), dict) else {}
    predicted = plan.get("predicted") if isinstance(plan.get("predicted"), dict) else {}
    if not isinstance(predicted.get("latency_ms"), (int, float)):
        return None
    return {"latency_ms": predicted["latency_ms"], "batch": plan.get("batch", 1), "seq_len": plan.get("seq_len"),
            "device": plan.get("device")}


def _round1(x):
    return None if x is None else round(x, 1)


def _one_run(engine, kind, batch, samples, manifest_names, args, progress):
    """(run entry, first-call ms or None when the pair could not run)."""
    arrays = match_inputs(engine.inputs, samples[kind], manifest_names)
    entry = {"inputs": kind, "batch": batch}
    static_batch = [s["shape"][0] for s in engine.inputs if s["shape"] and s["shape"][0]]
    feeds = dict((s["name"], make_feed(arrays[s["name"]], batch, s)) for s in engine.inputs)
    entry["shapes"] = dict((n, list(a.shape)) for n, a in feeds.items())
    try:
        run = engine.prepare(feeds)
        t0 = time.perf_counter_ns()
        run()
        once_ms = (time.perf_counter_ns() - t0) / 1e6
    except Exception as exc:  # e.g. a static-batch LiteRT graph asked for batch 8
        lines = str(exc).strip().splitlines()
        why = "%s: %s" % (type(exc).__name__, lines[0] if lines else "")
        if static_batch and batch != static_batch[0]:
            why = "the model has a static batch of %d (%s)" % (static_batch[0], why)
        entry["skipped"] = why
        progress.add(args.duration or args.iterations)
        return entry, None
    entry["latencies_ms"], entry["wall_s"] = time_series(run, args.warmup, args.iterations, args.duration, progress)
    entry["iterations"] = len(entry["latencies_ms"])
    return entry, once_ms


def _profile_pair(runs, prediction):
    ran = [r for r in runs if "latencies_ms" in r]
    want = (prediction or {}).get("batch") or 1
    return next((r for r in ran if r["inputs"] == "padded" and r["batch"] == want),
                next((r for r in ran if r["batch"] == want), ran[0]))


#: the profiled pass alternates blocks of this many clean and profiled runs (see _profile_ops)
PROFILE_BLOCK = 5


def _profile_ops(engine, model_path, art, runs, samples, manifest_names, args, prediction):
    """The profiled pass (see the module docstring); {"available": False, "unavailable_reason": ...} for a runtime
    without an op profiler.

    The end-to-end time the layer sum is compared with is timed in the same pass: blocks of PROFILE_BLOCK runs of
    the clean session (`engine`, no profiler) alternate with blocks of the profiled one, so both see the same
    machine state (on a shared VM the p50 of the timed rounds, a minute earlier, moved 10 % between benches). The
    first run of each block is not counted: it pays for waking the threads of a session that sat idle (and, for
    onnxruntime, for the other session's spinning threads)."""
    pair = _profile_pair(runs, prediction)
    out = {"runtime": engine.runtime, "inputs": pair["inputs"], "batch": pair["batch"], "warmup": args.warmup,
           "iterations": args.profile_iterations,
           "note": "profiled in a separate pass after the timed rounds (a fresh session with the profiler on, in "
                   "blocks of %d runs alternating with the clean session: end-to-end is the clean blocks' p50), so "
                   "the latency statistics above are not perturbed by it" % PROFILE_BLOCK}
    if engine.op_profile_unavailable:
        out.update(available=False, unavailable_reason=engine.op_profile_unavailable)
        return out
    folder = args.profile_dir or tempfile.mkdtemp(prefix=PROFILE_DIR_PREFIX)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    prof = open_engine(model_path, art.get("format"), art.get("provider"), args.threads,
                       profile_prefix=os.path.join(folder, "profile"), runtime_config=art.get("runtime_config"))
    prepared = []
    for eng in (engine, prof):
        arrays = match_inputs(eng.inputs, samples[pair["inputs"]], manifest_names)
        prepared.append(eng.prepare(dict((s["name"], make_feed(arrays[s["name"]], pair["batch"], s))
                                         for s in eng.inputs)))
    clean, profiled = prepared
    time_series(profiled, args.warmup, 0, None, _Silent())
    done = args.warmup  # profiled runs so far (the trace holds every one)
    counted = []  # their indices, in run order, that the summary counts
    clean_ms, profiled_ms = [], []
    left = args.profile_iterations
    while left > 0:
        k = min(PROFILE_BLOCK, left)
        clean()
        clean_ms.extend(time_series(clean, 0, k, None, _Silent())[0])
        profiled()
        profiled_ms.extend(time_series(profiled, 0, k, None, _Silent())[0])
        counted.extend(range(done + 1, done + 1 + k))
        done += k + 1
        left -= k
    trace = prof.end_profiling()
    out.update(available=True, unavailable_reason=None, trace_file=os.path.abspath(trace),
               trace_bytes=os.path.getsize(trace), profiled_p50_ms=median(profiled_ms),
               clean_p50_ms=median(clean_ms), clean_runs=len(clean_ms))
    out.update(summarize_ort_trace(trace, args.profile_iterations, counted=counted))
    return out


def benchmark(args):
    """The result record (see the module docstring); raises DeviceError with the exit code on failure."""
    started_at = utc_now()
    machine = machine_state()  # before anything of ours loads the CPU
    if args.probe_suite:
        machine["reference_probe"] = reference_probe(args.probe_suite, args.threads)
    bundle = os.path.abspath(args.bundle)
    manifest, manifest_sha = read_manifest(bundle)
    art = choose_artifact(manifest, args.artifact)
    if bench_decoder.is_decoder(art):  # decoder LLMs: generation (time to first token, tokens/s)
        return bench_decoder.benchmark(args, bundle, manifest, manifest_sha, art, machine, started_at,
                                       RUNNER_VERSION, plan_prediction(manifest))
    model_path = verify_model_files(bundle, manifest, art["path"])
    samples = load_sample_inputs(bundle, manifest)
    kinds = select_kinds(samples, args.inputs)
    emit("start", runner_version=RUNNER_VERSION, pid=os.getpid(), bundle=bundle, artifact=art["path"],
         inputs=kinds, batches=args.batch, warmup=args.warmup, iterations=args.iterations, duration_s=args.duration,
         threads=args.threads, deadline_s=args.deadline_s, repeat=args.repeat, profile_ops=args.profile_ops,
         warnings=machine["warnings"])

    rss_before = current_rss_mb()
    engine = open_engine(model_path, art.get("format"), art.get("provider"), args.threads,
                         runtime_config=art.get("runtime_config"))
    manifest_names = [s.get("name") for s in art.get("inputs") or [] if isinstance(s, dict)]

    pairs = [(k, b) for k in kinds for b in args.batch]
    rounds = args.repeat
    if args.duration:
        progress = Progress(rounds * len(pairs) * args.duration, "seconds")
    else:
        progress = Progress(rounds * len(pairs) * args.iterations, "iterations")
    tegra = Tegrastats(args.tegrastats_interval_ms)
    runs = []
    first_ms = None
    load_ms = engine.load_ms
    round_info = []
    try:
        for r in range(rounds):
            if r:  # a fresh session each round: what a restarted application would see
                engine = open_engine(model_path, art.get("format"), art.get("provider"), args.threads,
                                     runtime_config=art.get("runtime_config"))
            once = None
            for i, (kind, batch) in enumerate(pairs):
                entry, once_ms = _one_run(engine, kind, batch, samples, manifest_names, args, progress)
                if once is None and once_ms is not None:
                    once = once_ms
                if r == 0:
                    runs.append(entry)
                    if "latencies_ms" in entry:
                        entry["round_p50_ms"] = [median(entry["latencies_ms"])]
                elif "latencies_ms" in entry and "latencies_ms" in runs[i]:
                    runs[i]["latencies_ms"].extend(entry["latencies_ms"])
                    runs[i]["wall_s"] = round(runs[i]["wall_s"] + entry["wall_s"], 4)
                    runs[i]["iterations"] = len(runs[i]["latencies_ms"])
                    runs[i]["round_p50_ms"].append(median(entry["latencies_ms"]))
            round_info.append({"round": r + 1, "model_load_ms": round(engine.load_ms, 3),
                               "first_inference_ms": round(once, 3) if once is not None else None})
            if first_ms is None and once is not None:
                first_ms = once
    finally:
        tegra_summary = tegra.stop()
    if first_ms is None:
        raise DeviceError("no batch size could run: %s" % "; ".join("batch %d: %s" % (r["batch"], r["skipped"])
                                                                  for r in runs), EXIT_RUNTIME)
    op_profile = None
    if args.profile_ops:
        op_profile = _profile_ops(engine, model_path, art, runs, samples, manifest_names, args,
                                  plan_prediction(manifest))
    machine["thermal_after"] = thermal_zones() or None
    # a fresh probe session: the first one's threads keep spinning between runs (as calibrate's do), so it must not
    # stay open while the bundle runs
    if args.probe_suite and "ms" in machine["reference_probe"]:
        machine["reference_probe"]["after_ms"] = reference_probe(args.probe_suite, args.threads).get("ms")
    peak, peak_source = peak_rss_mb()
    return {
        "runner_version": RUNNER_VERSION,
        "manifest_sha256": manifest_sha,
        "bundle_id": content_id(manifest["files"]),
        "bundle_dir": os.path.realpath(bundle),
        "model_name": manifest.get("model_name"),
        "model_id": manifest.get("model_id"),
        "device": manifest.get("device"),
        "plan_prediction": plan_prediction(manifest),
        "artifact": {"path": art["path"], "format": art.get("format"), "precision": art.get("precision")},
        "runtime": engine.runtime,
        "runtime_module": engine.module,
        "runtime_version": engine.version,
        "provider_requested": engine.provider_requested,
        "provider_used": engine.provider_used,
        "fell_back": engine.fallback_reason is not None,
        "fallback_reason": engine.fallback_reason,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "board": board_model(),
        "arch": platform.machine(),
        "os": platform.platform(),
        "python_version": platform.python_version(),
        "numpy_version": __import__("numpy").__version__,
        "model_load_ms": round(load_ms, 3),
        "first_inference_ms": round(first_ms, 3),
        "rss_before_load_mb": _round1(rss_before),
        "peak_rss_mb": _round1(peak),
        "peak_rss_source": peak_source,
        "ru_maxrss_mb": _round1(ru_maxrss_mb()),
        "warmup": args.warmup,
        "iterations": args.iterations,
        "duration_s": args.duration,
        "tegrastats": tegra_summary,
        "started_at": started_at,
        "finished_at": utc_now(),
        "runs": runs,
        "repeat": rounds,
        "rounds": round_info,
        "machine": machine,
        "op_profile": op_profile,
    }


def run(args):
    if args.iterations is None and args.duration is None:
        args.iterations = 100
    return benchmark(args)
