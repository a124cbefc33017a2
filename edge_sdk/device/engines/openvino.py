"""OpenVINO engine for OpenVINO IR artifacts (model.xml + model.bin beside it); it also opens .onnx files, which
OpenVINO reads directly (what `calibrate` times for the openvino runtime).

Compiled with the LATENCY hint, the requested threads, and the bundle's runtime_config (the build's
INFERENCE_PRECISION_HINT: f32 unless the plan chose bf16 — on CPUs with AVX512_BF16/AMX the plugin would otherwise
pick bf16 by itself, and the quality the build measured would not be the quality that runs). Inputs of the plan's
own shape (runtime_config EDGE_SDK_STATIC_SHAPES) run on a fixed-shape compile of the same IR; others on the
dynamic one.

Op profiling (`bench --profile-ops`): compiled with PERF_COUNT, the request's per-node counters
(`get_profiling_info`: executed node, its type, the kernel that ran it and its real time) are read after every run
and written as a chrome-trace JSON in onnxruntime's layout (one `Session/model_run` event per run, one
`Node/<name>_kernel_time` event per executed node), so opprofile.py summarises both runtimes alike. The counters
are averages over every run of the compiled model so far (measured: they fall from the first, slow run's value
towards the steady one), in whole microseconds and truncated twice: each run's duration is cast down to whole µs
before it is added up, and the total is divided by the run count in integers (OpenVINO's
src/plugins/intel_cpu/src/perf_count.h: duration_cast<microseconds>, total_duration / num). run_times() recovers
each run's own time of a node from them without the bias that leaves (see there). OpenVINO reports durations, not
start times: the trace spaces a run's nodes evenly over the run in execution order.
"""

import json
import os
import time

from ..errors import EXIT_BAD_INPUT, EXIT_RUNTIME, DeviceError
from .base import Engine

INSTALL = "python3 -m pip install openvino"
#: runtime_config key (not an OpenVINO property): input shapes, "1x128[,…]", that get a fixed-shape compiled model
#: beside the dynamic one. OpenVINO's CPU plugin runs a fixed shape faster (measured: MiniLM int8 at 1x128, 1.17x
#: on 2 Zen 5 vCPUs; benchmarks/peer_comparison.py), so the shape the plan was made for gets one.
STATIC_SHAPES = "EDGE_SDK_STATIC_SHAPES"


class OpenvinoEngine(Engine):
    runtime = "openvino"
    op_profile_unavailable = None

    def __init__(self, path, provider, threads, runtime_config=None, profile_prefix=None):
        try:
            import openvino as ov
        except ImportError as exc:
            raise DeviceError("openvino is not installed on this device (%s); install it with '%s'"
                              % (exc, INSTALL), EXIT_RUNTIME)
        if path.endswith(".xml") and not os.path.isfile(path[:-4] + ".bin"):
            raise DeviceError("%s: its weights %s are missing; an OpenVINO IR is the .xml and the .bin of the same "
                              "name side by side" % (path, os.path.basename(path[:-4] + ".bin")), EXIT_BAD_INPUT)
        self.module = "openvino"
        self.version = ov.__version__.split("-")[0]
        core = ov.Core()
        requested = (provider or "CPU").upper()
        self.provider_requested = requested
        available = core.available_devices
        device = requested
        self.fallback_reason = None
        if not any(d == requested or d.startswith(requested + ".") for d in available):
            device = "CPU"
            self.fallback_reason = ("OpenVINO device %s is not available here (available: %s)"
                                    % (requested, ", ".join(available) or "none"))
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = int(threads)
        settings = dict(runtime_config or {})
        static = settings.pop(STATIC_SHAPES, None)
        for key, value in settings.items():
            if device == "CPU" or key != "INFERENCE_PRECISION_HINT":
                config[key] = value
        self._profile = None
        if profile_prefix:
            config["PERF_COUNT"] = "YES"
            self._profile = {"prefix": profile_prefix, "runs": [], "executed": ov.ProfilingInfo.Status.EXECUTED}
        t0 = time.perf_counter_ns()
        self.specialized = {}
        try:
            self.compiled = core.compile_model(path, device, config)
            for text in (static or "").split(","):  # the plan's shape: a fixed-shape model compiled beside
                if text.strip():
                    dims = tuple(int(x) for x in text.strip().split("x"))
                    model = core.read_model(path)
                    model.reshape(dict((p.get_any_name(), list(dims)) for p in model.inputs
                                       if p.get_partial_shape().rank.get_length() == len(dims)))
                    self.specialized[dims] = core.compile_model(model, device, config)
        except Exception as exc:
            raise DeviceError("openvino cannot load %s on %s: %s" % (os.path.basename(path), device,
                                                                   " ".join(str(exc).split())[:300]), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.provider_used = device
        self.request = self.compiled.create_infer_request()
        self.inputs = []
        for port in self.compiled.inputs:
            shape = port.get_partial_shape()
            dims = [d.get_length() if d.is_static else None for d in shape]
            self.inputs.append({"name": port.get_any_name(), "shape": dims,
                                "dtype": port.get_element_type().to_dtype().name})
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]

    def prepare(self, feeds):
        first = feeds.get(self.inputs[0]["name"]) if self.inputs else None
        compiled = self.specialized.get(tuple(getattr(first, "shape", ()))) if self.specialized else None
        if compiled is None:
            request, ports = self.request, list(self.compiled.outputs)
        else:  # inputs of exactly the plan's shape run on the fixed-shape model
            request, ports = compiled.create_infer_request(), list(compiled.outputs)

        if self._profile is not None:
            graph = id(compiled if compiled is not None else self.compiled)

            def profiled():
                t0 = time.perf_counter_ns()
                result = request.infer(feeds)
                t1 = time.perf_counter_ns()
                out = [result[p].copy() for p in ports]
                self._record(graph, request, t0, t1)
                return out
            return profiled

        def run():
            result = request.infer(feeds)
            return [result[p].copy() for p in ports]  # results live in the request's buffers
        return run

    def _record(self, graph, request, t0_ns, t1_ns):
        """Keep the counters as they are; end_profiling() works them out. (Python work between runs lets the
        runtime's threads fall asleep, and waking them slowed the next run: 1 ms between runs cost 1.7 ms on MiniLM.)"""
        self._profile["runs"].append((graph, t0_ns / 1e3, (t1_ns - t0_ns) / 1e3, request.get_profiling_info()))

    def _per_run(self):
        """[(start µs, wall µs, [(node, type, kernel, µs)])]: each run's own per-node times from the compiled model's
        running averages (see the module docstring and run_times)."""
        done = self._profile["executed"]
        runs = []  # (graph, its run index, start, wall, {node: (type, kernel, average µs)})
        count = {}
        for graph, ts, dur, infos in self._profile["runs"]:
            count[graph] = count.get(graph, 0) + 1
            nodes = dict((p.node_name, (p.node_type, p.exec_type, p.real_time.total_seconds() * 1e6))
                         for p in infos if p.status == done)
            runs.append((graph, count[graph] - 1, ts, dur, nodes))
        own = {}  # (graph, node) -> that node's own time in each run of its graph, in order
        for graph in count:
            mine = [r[4] for r in runs if r[0] == graph]
            for name in set(n for nodes in mine for n in nodes):
                averages, last = [], 0.0
                for nodes in mine:  # a counter not reported in a run did not move
                    last = nodes[name][2] if name in nodes else last
                    averages.append(last)
                own[(graph, name)] = run_times(averages)
        return [(ts, dur, [(name, kind, kernel, own[(graph, name)][i]) for name, (kind, kernel, _) in nodes.items()])
                for graph, i, ts, dur, nodes in runs]

    def end_profiling(self):
        """Write the runs recorded since the profiling engine opened as a chrome trace; its path (None: no runs)."""
        if self._profile is None or not self._profile["runs"]:
            return None
        events = []
        for ts, dur, nodes in self._per_run():
            events.append({"cat": "Session", "name": "model_run", "ph": "X", "pid": os.getpid(), "tid": 0,
                           "ts": round(ts, 3), "dur": round(dur, 3)})
            step = dur / float(len(nodes) or 1)
            for i, (name, kind, kernel, us) in enumerate(nodes):
                events.append({"cat": "Node", "name": name + "_kernel_time", "ph": "X", "pid": os.getpid(),
                               "tid": 1, "ts": round(ts + i * step, 3), "dur": round(us, 3),
                               "args": {"op_name": kind, "provider": kernel}})
        path = "%s_openvino_%d.json" % (self._profile["prefix"], os.getpid())
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(events, f)
        os.replace(tmp, path)
        self._profile["runs"] = []
        return path


def run_times(averages):
    """Each run's own time (µs, at least 0.5) of one node, from OpenVINO's counter after runs 1..n (`averages`, in
    order).

    After run k the counter reads a_k = floor(T_k / k), T_k the sum of the runs' durations each cast down to whole µs,
    so T_k lies in [k·a_k, k·a_k + k − 1]. Differencing k·a_k as it stands swings by up to k − 1 µs whenever the
    average ticks over a whole µs (a run of −20 µs, then one of +20 µs) and is low on average. So: take the middle of
    each interval, fit the closest non-decreasing sequence to those totals (a sum of durations never falls;
    pool-adjacent-violators, least squares), difference it, and add back the half µs the per-run cast drops on
    average. The middle and the half µs are right on average for a node whose duration varies by a µs or more from run
    to run (its fractions spread evenly); one whose duration barely varies is over-counted by up to 1 µs a run.
    Written out here because the device package carries only the standard library and the runtimes.
    Checked on the demo's MiniLM int8 IR with `edge-sdk bench --local --profile-ops` (2 threads, 4 alternating
    pairs): the kernels covered 0.94 of the profiled run, against 0.88–0.91 from plain differencing; outside bench,
    the final averages plus 1 µs a node came to 1.00–1.01 of a run's wall time less that of a one-node model with the
    same inputs, at 1 and 2 threads."""
    totals = [k * a + (k - 1) / 2.0 for k, a in enumerate(averages, 1)]
    blocks = []  # [mean, count]: pool-adjacent-violators
    for t in totals:
        blocks.append([t, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, c2), (m1, c1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    fitted = [m for m, c in blocks for _ in range(c)]
    return [(fitted[i] - (fitted[i - 1] if i else 0.0)) + 0.5 for i in range(len(fitted))]


ENGINE = OpenvinoEngine
