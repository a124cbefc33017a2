"""OpenVINO engine for OpenVINO IR artifacts (model.xml + model.bin beside it); it also opens .onnx files, which
OpenVINO reads directly (what `calibrate` times for the openvino runtime).

Compiled with the LATENCY hint, the requested threads, and the bundle's runtime_config (the build's
INFERENCE_PRECISION_HINT: f32 unless the plan chose bf16 — on CPUs with AVX512_BF16/AMX the plugin would otherwise
pick bf16 by itself, and the quality the build measured would not be the quality that runs). Inputs of the plan's
own shape (runtime_config EDGE_SDK_STATIC_SHAPES) run on a fixed-shape compile of the same IR; others on the
dynamic one.
"""

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
    op_profile_unavailable = ("OpenVINO's per-op counters (PERF_COUNT) are not read by edge-sdk yet; per-layer "
                              "times are measured for onnxruntime artifacts")

    def __init__(self, path, provider, threads, runtime_config=None):
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

        def run():
            result = request.infer(feeds)
            return [result[p].copy() for p in ports]  # results live in the request's buffers
        return run


ENGINE = OpenvinoEngine
