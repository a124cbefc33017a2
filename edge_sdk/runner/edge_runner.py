#!/usr/bin/env python3
"""edge_runner: benchmark the model of an edge-sdk bundle on the device it sits on.

Copied into every bundle and run on bare devices, so it needs only the standard library, numpy and ONE runtime
(onnxruntime for .onnx; ai_edge_litert, else tflite_runtime, for .tflite). It imports nothing from edge_sdk and
keeps Python 3.8 syntax.

    python3 edge_runner.py --bundle DIR [--artifact PATH] [--warmup 10] [--iterations 100 | --duration 30]
                           [--batch 1,8] [--threads N] [--inputs auto|real|padded|all] [--deadline-s S]

Sample inputs (the bundle's `sample_inputs` .npz; edge_sdk.bench.inputs.save_sample_inputs writes it):
  * key "<kind>/<input name>", e.g. "real/input_ids", "real/attention_mask", "padded/input_ids".
  * kind "real": sentences at their real token lengths (padded only to the longest of them);
    kind "padded": padded to the plan's sequence length. --inputs auto takes "padded" when present, else "real".
  * axis 0 is the batch: every array of a kind has the same number of rows. A batch of b is rows 0..b-1,
    repeated cyclically when b exceeds the rows.
  * arrays are matched to the model's inputs by name (LiteRT's "serving_default_input_ids:0" counts as
    "input_ids"); failing that, the i-th name of the manifest artifact's `inputs` list names the array for the
    model's i-th input (litert-torch names positional inputs args_0, args_1, ...).
  * where the model has a static dimension (LiteRT exports do), rows are zero-padded or truncated to it;
    values are cast to the model's input dtype (LiteRT: int32).

Output: JSON lines on stdout (other lines a native library prints there are not JSON; callers skip them):
  {"event": "start", ...}
  {"event": "progress", "done": D, "total": T, "unit": "iterations" | "seconds"}   about every 10 %
  {"event": "result", ..., "runs": [{"inputs", "batch", "shapes", "iterations", "wall_s",
                                     "latencies_ms": [raw per-iteration latencies]} | {..., "skipped": why}]}
  {"event": "error", "message": "...", "code": N}
Each (input kind, batch size) pair is one run: its own warm-up, then --iterations timed runs, or timed runs for
--duration seconds. Exit codes: 0 done, 1 unexpected failure, 2 bad arguments or bundle, 3 a file's sha256 differs
from the manifest, 4 the runtime is missing or cannot load the model, 124 --deadline-s passed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timezone

RUNNER_VERSION = "1"

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTEGRITY, EXIT_RUNTIME, EXIT_DEADLINE, EXIT_INTERRUPTED = 1, 2, 3, 4, 124, 130
INPUT_KINDS = ("real", "padded")

# Known LiteRT delegate libraries, by the provider name device profiles use. "xnnpack"/"cpu" need none.
TFLITE_DELEGATE_LIBS = {
    "edgetpu": "libedgetpu.so.1",
    "gpu": "libtensorflowlite_gpu_delegate.so",
    "vx": "libvx_delegate.so",
    "qnn": "libQnnTFLiteDelegate.so",
    "tflite-delegate": "libtidl_tfl_delegate.so",
}
TFLITE_CPU_PROVIDERS = ("", "cpu", "xnnpack")

ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
              "tensor(uint8)": "uint8", "tensor(bool)": "bool"}

_out_lock = threading.Lock()
_finished = False  # set (under _out_lock) once a result or error was printed; the watchdog then stays quiet
_children = []  # helper processes (tegrastats) to end on every way out


class RunnerError(Exception):
    def __init__(self, message, code=EXIT_FAILED):
        Exception.__init__(self, message)
        self.code = code


def emit(event, **fields):
    record = {"event": event}
    record.update(fields)
    line = json.dumps(record, separators=(",", ":"))
    with _out_lock:
        if _finished:
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def emit_final(event, **fields):
    """Print the one result/error line; nothing is printed after it."""
    global _finished
    record = {"event": event}
    record.update(fields)
    line = json.dumps(record, separators=(",", ":"))
    with _out_lock:
        if _finished:
            return False
        _finished = True
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return True


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# ----------------------------------------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        emit_final("error", message="bad arguments: %s" % message, code=EXIT_BAD_INPUT)
        sys.exit(EXIT_BAD_INPUT)


def _batches(text):
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated positive integers, got %r" % text)
    if not sizes or any(b < 1 for b in sizes):
        raise argparse.ArgumentTypeError("expected comma-separated positive integers, got %r" % text)
    return sizes


def _positive(kind):
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


def parse_args(argv):
    p = _Parser(prog="edge_runner.py", description="Benchmark the model of an edge-sdk bundle on this device.")
    p.add_argument("--bundle", required=True, help="bundle directory (holds manifest.json)")
    p.add_argument("--artifact", help="model file to run, relative to the bundle (default: the first artifact)")
    p.add_argument("--warmup", type=_non_negative_int, default=10, help="untimed runs before each timed series")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--iterations", type=_positive(int), help="timed runs per batch size (default 100)")
    g.add_argument("--duration", type=_positive(float), help="seconds of timed runs per batch size")
    p.add_argument("--batch", type=_batches, default=[1], help="batch sizes, e.g. 1,8")
    p.add_argument("--threads", type=_positive(int), help="runtime CPU threads (default: the runtime's choice)")
    p.add_argument("--inputs", choices=("auto",) + INPUT_KINDS + ("all",), default="auto",
                   help="which sample inputs: auto = padded if the bundle has them, else real")
    p.add_argument("--deadline-s", type=_positive(float), help="give up (exit 124) after this many seconds")
    p.add_argument("--tegrastats-interval-ms", type=_positive(int), default=100, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.iterations is None and args.duration is None:
        args.iterations = 100
    return args


# ----------------------------------------------------------------------------------------------- deadline


def _end_children():
    for proc in list(_children):
        try:
            proc.terminate()
        except OSError:
            pass


class Watchdog(object):
    """Ends the process at the deadline even when the main thread is stuck inside the runtime.

    A thread prints the error line and exits 124; should the GIL never come free, SIGALRM (default action:
    terminate) fires a few seconds later as a backstop.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self._stop = threading.Event()
        t = threading.Thread(target=self._wait, name="deadline")
        t.daemon = True
        t.start()
        if hasattr(signal, "setitimer"):
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.setitimer(signal.ITIMER_REAL, seconds + 5.0)

    def _wait(self):
        if self._stop.wait(self.seconds):
            return
        if emit_final("error", message="deadline of %gs passed; runner stopped itself" % self.seconds,
                      code=EXIT_DEADLINE):
            _end_children()
            os._exit(EXIT_DEADLINE)

    def cancel(self):
        self._stop.set()
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)


# ----------------------------------------------------------------------------------------------- bundle


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(bundle):
    path = os.path.join(bundle, "manifest.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except (IOError, OSError) as exc:
        raise RunnerError("cannot read %s: %s" % (path, exc.strerror or exc), EXIT_BAD_INPUT)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise RunnerError("%s is not JSON: %s" % (path, exc), EXIT_BAD_INPUT)
    if not isinstance(manifest, dict):
        raise RunnerError("%s: expected a JSON object" % path, EXIT_BAD_INPUT)
    arts = manifest.get("artifacts")
    if not isinstance(arts, list) or not arts or not all(isinstance(a, dict) and "path" in a for a in arts):
        raise RunnerError("%s: field 'artifacts' must be a non-empty list of {path, format, ...}" % path,
                          EXIT_BAD_INPUT)
    if not isinstance(manifest.get("files"), dict):
        raise RunnerError("%s: field 'files' must map paths to {sha256, size_bytes}" % path, EXIT_BAD_INPUT)
    return manifest, hashlib.sha256(raw).hexdigest()


def _norm(rel):
    return os.path.normpath(rel).replace(os.sep, "/")


def choose_artifact(manifest, wanted):
    arts = manifest["artifacts"]
    if wanted is None:
        return arts[0]
    for art in arts:
        if _norm(art["path"]) == _norm(wanted):
            return art
    raise RunnerError("--artifact %s is not one of the bundle's artifacts (%s)"
                      % (wanted, ", ".join(a["path"] for a in arts)), EXIT_BAD_INPUT)


def verify_file(bundle, manifest, rel):
    """Return the absolute path of `rel` after checking its sha256 against the manifest."""
    entry = manifest["files"].get(rel) or manifest["files"].get(_norm(rel))
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise RunnerError("%s is not listed with a sha256 in manifest.json; refusing to load it" % rel,
                          EXIT_INTEGRITY)
    path = os.path.join(bundle, rel)
    if not os.path.isfile(path):
        raise RunnerError("%s is listed in manifest.json but missing from the bundle" % rel, EXIT_BAD_INPUT)
    got = sha256_of(path)
    if got != entry["sha256"]:
        raise RunnerError("sha256 of %s is %s but manifest.json says %s; the file was changed or damaged, "
                          "refusing to load it" % (rel, got[:16], entry["sha256"][:16]), EXIT_INTEGRITY)
    return path


def verify_model_files(bundle, manifest, rel):
    """The model file, plus external-data files named after it (model.onnx.data)."""
    path = verify_file(bundle, manifest, rel)
    prefix = _norm(rel) + "."
    for other in sorted(manifest["files"]):
        if _norm(other).startswith(prefix):
            verify_file(bundle, manifest, other)
    return path


def load_sample_inputs(bundle, manifest):
    """{kind: {input name: array}} from the bundle's .npz (see the module docstring for the keys)."""
    import numpy as np

    rel = manifest.get("sample_inputs")
    if not rel:
        raise RunnerError("the bundle has no sample inputs (manifest.json: sample_inputs is null)", EXIT_BAD_INPUT)
    path = verify_file(bundle, manifest, rel)
    kinds = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                kind, sep, name = key.partition("/")
                if not sep or not name:
                    raise RunnerError("%s: key %r is not '<kind>/<input name>'" % (rel, key), EXIT_BAD_INPUT)
                kinds.setdefault(kind, {})[name] = npz[key]
    except (ValueError, OSError) as exc:
        raise RunnerError("%s: not a readable .npz (%s)" % (rel, exc), EXIT_BAD_INPUT)
    for kind, arrays in kinds.items():
        rows = set(a.shape[0] if a.ndim else 0 for a in arrays.values())
        if len(rows) != 1 or 0 in rows:
            raise RunnerError("%s: arrays of kind %r need the same, non-zero number of rows (axis 0); got %s"
                              % (rel, kind, {n: a.shape for n, a in arrays.items()}), EXIT_BAD_INPUT)
    return kinds


def select_kinds(available, wanted):
    if wanted == "auto":
        for kind in ("padded", "real"):
            if kind in available:
                return [kind]
        wanted = "all"
    if wanted == "all":
        order = [k for k in INPUT_KINDS if k in available] + sorted(k for k in available if k not in INPUT_KINDS)
        if not order:
            raise RunnerError("the sample inputs hold no arrays", EXIT_BAD_INPUT)
        return order
    if wanted not in available:
        raise RunnerError("the sample inputs have no %r arrays (they have: %s)"
                          % (wanted, ", ".join(sorted(available)) or "none"), EXIT_BAD_INPUT)
    return [wanted]


def _plain_name(name):
    """LiteRT tensor names carry the signature and an output index: serving_default_input_ids:0 → input_ids."""
    name = re.sub(r":\d+$", "", name)
    return name[len("serving_default_"):] if name.startswith("serving_default_") else name


def match_inputs(model_inputs, arrays, manifest_names):
    """{model input name: array}: by name, by undecorated name, else by the manifest's input order."""
    names = [spec["name"] for spec in model_inputs]
    for key in (lambda n: n, _plain_name):
        if all(key(n) in arrays for n in names):
            return dict((n, arrays[key(n)]) for n in names)
    if len(manifest_names) == len(names) and all(n in arrays for n in manifest_names):
        return dict((n, arrays[m]) for n, m in zip(names, manifest_names))
    raise RunnerError("cannot match the model's inputs %s to the sample arrays %s (manifest order: %s)"
                      % (names, sorted(arrays), manifest_names or "none"), EXIT_BAD_INPUT)


def make_feed(array, batch, spec):
    """Tile rows up to `batch`, fit static dimensions (zero-pad or truncate) and cast to the model's dtype."""
    import numpy as np

    shape = spec["shape"]
    if array.ndim != len(shape):
        raise RunnerError("input %s: the model wants %d dimensions %s, the sample array has shape %s"
                          % (spec["name"], len(shape), shape, list(array.shape)), EXIT_BAD_INPUT)
    out = array[np.arange(batch) % array.shape[0]]
    for axis in range(1, out.ndim):
        want = shape[axis]
        if not isinstance(want, int) or want <= 0 or out.shape[axis] == want:
            continue
        if out.shape[axis] > want:
            out = out[(slice(None),) * axis + (slice(0, want),)]
        else:
            pad = [(0, 0)] * out.ndim
            pad[axis] = (0, want - out.shape[axis])
            out = np.pad(out, pad)
    return np.ascontiguousarray(out.astype(spec["dtype"], copy=False))


# ----------------------------------------------------------------------------------------------- runtimes


def _dist_version(*names):
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return None
    for name in names:
        try:
            return metadata.version(name)
        except Exception:
            continue
    return None


ORT_PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                        "tensorrt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider",
                        "coreml": "CoreMLExecutionProvider", "qnn": "QNNExecutionProvider",
                        "xnnpack": "XnnpackExecutionProvider", "dml": "DmlExecutionProvider",
                        "nnapi": "NnapiExecutionProvider"}


class OrtEngine(object):
    runtime = "onnxruntime"

    def __init__(self, path, provider, threads):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RunnerError("onnxruntime is not installed on this device (%s); install it with "
                              "'python3 -m pip install onnxruntime'" % exc, EXIT_RUNTIME)
        self.module = "onnxruntime"
        self.version = ort.__version__
        requested = provider or "CPUExecutionProvider"
        requested = ORT_PROVIDER_ALIASES.get(requested.lower(), requested)
        self.provider_requested = requested
        available = ort.get_available_providers()
        self.fallback_reason = None
        if requested in available:
            providers = [requested] + (["CPUExecutionProvider"] if requested != "CPUExecutionProvider" else [])
        else:
            providers = ["CPUExecutionProvider"]
            self.fallback_reason = ("%s is not available in this onnxruntime build (available: %s)"
                                    % (requested, ", ".join(available)))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        # Idle ORT threads spin after each run and steal cores from anything else measured on the device.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        t0 = time.perf_counter_ns()
        try:
            self.session = ort.InferenceSession(path, opts, providers=providers)
        except Exception as exc:
            raise RunnerError("onnxruntime cannot load %s: %s" % (os.path.basename(path), exc), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.provider_used = self.session.get_providers()[0]
        if self.provider_used != requested and self.fallback_reason is None:
            self.fallback_reason = "onnxruntime could not initialise %s and ran on %s" % (requested,
                                                                                          self.provider_used)
        self.inputs = []
        for i in self.session.get_inputs():
            dims = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
            self.inputs.append({"name": i.name, "shape": dims, "dtype": ORT_DTYPES.get(i.type, "float32")})

    def prepare(self, feeds):
        session = self.session

        def run():
            return session.run(None, feeds)
        return run


class TfliteEngine(object):
    runtime = "litert"

    def __init__(self, path, provider, threads):
        mod = None
        errors = []
        for name, dist in (("ai_edge_litert.interpreter", ("ai-edge-litert", "ai-edge-litert-nightly")),
                           ("tflite_runtime.interpreter", ("tflite-runtime", "tflite_runtime"))):
            try:
                mod = __import__(name, fromlist=["Interpreter"])
            except Exception as exc:  # ImportError, or a wheel built against another numpy ABI
                errors.append("%s: %s" % (name, exc))
                continue
            self.module = name.split(".")[0]
            self.version = _dist_version(*dist) or getattr(sys.modules[self.module], "__version__", None)
            break
        if mod is None:
            raise RunnerError("no LiteRT runtime on this device (%s); install it with "
                              "'python3 -m pip install ai-edge-litert'" % "; ".join(errors), EXIT_RUNTIME)
        requested = (provider or "xnnpack").lower()
        # LiteRT's CPU path is XNNPACK (applied by default); "cpu" asks for the same thing
        self.provider_requested = "xnnpack" if requested in TFLITE_CPU_PROVIDERS else requested
        self.fallback_reason = None
        delegates = []
        if requested not in TFLITE_CPU_PROVIDERS:
            lib = TFLITE_DELEGATE_LIBS.get(requested)
            if lib is None:
                self.fallback_reason = "no known LiteRT delegate library for provider %r" % requested
            else:
                try:
                    delegates = [mod.load_delegate(lib)]
                except Exception as exc:
                    self.fallback_reason = "could not load the %s delegate (%s): %s" % (requested, lib, exc)
        t0 = time.perf_counter_ns()
        try:
            kwargs = {"model_path": path, "num_threads": threads}
            if delegates:
                kwargs["experimental_delegates"] = delegates
            self.interpreter = mod.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise RunnerError("%s cannot load %s: %s" % (self.module, os.path.basename(path), exc), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.provider_used = requested if delegates else "xnnpack"
        self.inputs = []
        self._details = self.interpreter.get_input_details()
        for d in self._details:
            sig = d.get("shape_signature")
            sig = list(sig) if sig is not None and len(sig) else list(d["shape"])
            self.inputs.append({"name": d["name"], "shape": [int(x) if int(x) > 0 else None for x in sig],
                                "dtype": d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"])})
        self._outputs = [d["index"] for d in self.interpreter.get_output_details()]

    def prepare(self, feeds):
        interp = self.interpreter
        resized = False
        pairs = []
        current = dict((d["index"], tuple(d["shape"])) for d in interp.get_input_details())
        for d in self._details:
            array = feeds[d["name"]]
            if current[d["index"]] != tuple(array.shape):
                interp.resize_tensor_input(d["index"], list(array.shape), strict=False)
                resized = True
            pairs.append((d["index"], array))
        if resized:
            interp.allocate_tensors()
        outputs = self._outputs

        def run():
            for index, array in pairs:
                interp.set_tensor(index, array)
            interp.invoke()
            return [interp.get_tensor(i) for i in outputs]
        return run


def open_engine(path, fmt, provider, threads):
    fmt = fmt or os.path.splitext(path)[1].lstrip(".")
    if fmt == "onnx":
        return OrtEngine(path, provider, threads)
    if fmt == "tflite":
        return TfliteEngine(path, provider, threads)
    raise RunnerError("artifact format %r is not runnable here (onnx or tflite)" % fmt, EXIT_BAD_INPUT)


# ----------------------------------------------------------------------------------------------- machine facts


def _proc_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (IOError, OSError, ValueError, IndexError):
        pass
    return None


def ru_maxrss_mb():
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1048576.0 if sys.platform == "darwin" else maxrss / 1024.0  # bytes on macOS, KiB elsewhere


def peak_rss_mb():
    """(peak MB, source): VmHWM from /proc when there is one, else getrusage's ru_maxrss."""
    hwm = _proc_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024.0, "VmHWM"
    maxrss = ru_maxrss_mb()
    return maxrss, ("ru_maxrss" if maxrss is not None else None)


def current_rss_mb():
    kb = _proc_kb("VmRSS")
    return kb / 1024.0 if kb is not None else None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model", "Processor") and value.strip():
                    return value.strip()
    except (IOError, OSError):
        pass
    return platform.processor() or platform.machine() or None


def board_model():
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return f.read().rstrip(b"\x00\n").decode("utf-8", "replace") or None
    except (IOError, OSError):
        return None


# ----------------------------------------------------------------------------------------------- tegrastats

_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


def parse_tegrastats_line(line):
    """{"rails_mw": {rail: instant mW}, "temps_c": {sensor: C}} from one tegrastats line."""
    rails = dict((m.group(1), int(m.group(2))) for m in _RAIL.finditer(line))
    temps = {}
    for m in _TEMP.finditer(line):
        value = float(m.group(2))
        if value > -100:  # -256C marks a sensor that is off
            temps[m.group(1)] = value
    return {"rails_mw": rails, "temps_c": temps}


def summarize_tegrastats(samples, interval_ms):
    samples = [s for s in samples if s["rails_mw"] or s["temps_c"]]
    if not samples:
        return None
    rails = {}
    for s in samples:
        for name, mw in s["rails_mw"].items():
            rails.setdefault(name, []).append(mw)
    temps = {}
    for s in samples:
        for name, c in s["temps_c"].items():
            temps[name] = max(c, temps.get(name, c))
    total = next((r for r in TOTAL_RAILS if r in rails), None)
    return {
        "samples": len(samples),
        "interval_ms": interval_ms,
        "power_rail": total,
        "power_mw_mean": (sum(rails[total]) / float(len(rails[total]))) if total else None,
        "power_mw_max": max(rails[total]) if total else None,
        "rails_mw_mean": dict((k, round(sum(v) / float(len(v)), 1)) for k, v in rails.items()),
        "temperatures_c_max": temps,
    }


def _die_with_parent():
    """In the child: ask Linux to SIGTERM it when the runner dies, however the runner dies."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Tegrastats(object):
    """Reads Jetson power rails and temperatures while the benchmark runs; does nothing off Jetson."""

    def __init__(self, interval_ms):
        self.interval_ms = interval_ms
        self.samples = []
        self.proc = None
        exe = shutil.which("tegrastats")
        if not exe:
            return
        try:
            self.proc = subprocess.Popen([exe, "--interval", str(interval_ms)], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                         universal_newlines=True, bufsize=1,
                                         preexec_fn=_die_with_parent if os.name == "posix" else None)
        except OSError:
            self.proc = None
            return
        _children.append(self.proc)
        self.thread = threading.Thread(target=self._read, name="tegrastats")
        self.thread.daemon = True
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.samples.append(parse_tegrastats_line(line))

    def stop(self):
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=3)
        if self.proc in _children:
            _children.remove(self.proc)
        return summarize_tegrastats(self.samples, self.interval_ms)


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


def benchmark(args):
    started_at = utc_now()
    bundle = os.path.abspath(args.bundle)
    manifest, manifest_sha = read_manifest(bundle)
    art = choose_artifact(manifest, args.artifact)
    model_path = verify_model_files(bundle, manifest, art["path"])
    samples = load_sample_inputs(bundle, manifest)
    kinds = select_kinds(samples, args.inputs)
    emit("start", runner_version=RUNNER_VERSION, pid=os.getpid(), bundle=bundle, artifact=art["path"],
         inputs=kinds, batches=args.batch, warmup=args.warmup, iterations=args.iterations, duration_s=args.duration,
         threads=args.threads, deadline_s=args.deadline_s)

    rss_before = current_rss_mb()
    engine = open_engine(model_path, art.get("format"), art.get("provider"), args.threads)
    manifest_names = [s.get("name") for s in art.get("inputs") or [] if isinstance(s, dict)]

    pairs = [(k, b) for k in kinds for b in args.batch]
    if args.duration:
        progress = Progress(len(pairs) * args.duration, "seconds")
    else:
        progress = Progress(len(pairs) * args.iterations, "iterations")
    tegra = Tegrastats(args.tegrastats_interval_ms)
    runs = []
    first_ms = None
    try:
        for kind, batch in pairs:
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
                runs.append(entry)
                progress.add(args.duration or args.iterations)
                continue
            if first_ms is None:
                first_ms = once_ms
            entry["latencies_ms"], entry["wall_s"] = time_series(run, args.warmup, args.iterations, args.duration,
                                                                 progress)
            entry["iterations"] = len(entry["latencies_ms"])
            runs.append(entry)
    finally:
        tegra_summary = tegra.stop()
    if first_ms is None:
        raise RunnerError("no batch size could run: %s" % "; ".join("batch %d: %s" % (r["batch"], r["skipped"])
                                                                  for r in runs), EXIT_RUNTIME)
    peak, peak_source = peak_rss_mb()
    return {
        "runner_version": RUNNER_VERSION,
        "manifest_sha256": manifest_sha,
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
        "model_load_ms": round(engine.load_ms, 3),
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
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    watchdog = Watchdog(args.deadline_s) if args.deadline_s else None
    code = 0
    try:
        emit_final("result", **benchmark(args))
    except RunnerError as exc:
        code = exc.code
        emit_final("error", message=str(exc), code=code)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        emit_final("error", message="interrupted", code=code)
    except Exception as exc:  # a runtime failing mid-run: say what, keep the traceback on stderr
        traceback.print_exc()
        code = EXIT_FAILED
        emit_final("error", message="%s: %s" % (type(exc).__name__, exc), code=code)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        _end_children()
    return code


if __name__ == "__main__":
    sys.exit(main())
