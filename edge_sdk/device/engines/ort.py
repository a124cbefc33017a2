"""onnxruntime engine for .onnx artifacts (execution providers: CPU, CUDA, TensorRT, OpenVINO, ...)."""

import os
import time

from ..errors import EXIT_RUNTIME, DeviceError
from .base import Engine, ort_session_options

ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
              "tensor(uint8)": "uint8", "tensor(bool)": "bool"}

ORT_PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                        "tensorrt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider",
                        "coreml": "CoreMLExecutionProvider", "qnn": "QNNExecutionProvider",
                        "xnnpack": "XnnpackExecutionProvider", "dml": "DmlExecutionProvider",
                        "nnapi": "NnapiExecutionProvider"}


class OrtEngine(Engine):
    runtime = "onnxruntime"
    op_profile_unavailable = None

    def __init__(self, path, provider, threads, profile_prefix=None, runtime_config=None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DeviceError("onnxruntime is not installed on this device (%s); install it with "
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
        opts = ort_session_options(ort, threads, runtime_config)  # runtime_config: session config entries
        self._profiling = bool(profile_prefix)
        if profile_prefix:  # onnxruntime's own profiler: a chrome-trace JSON, one event per kernel run
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
        t0 = time.perf_counter_ns()
        try:
            self.session = ort.InferenceSession(path, opts, providers=providers)
        except Exception as exc:
            raise DeviceError("onnxruntime cannot load %s: %s" % (os.path.basename(path), exc), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.provider_used = self.session.get_providers()[0]
        if self.provider_used != requested and self.fallback_reason is None:
            self.fallback_reason = "onnxruntime could not initialise %s and ran on %s" % (requested,
                                                                                          self.provider_used)
        self.inputs = []
        for i in self.session.get_inputs():
            dims = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
            self.inputs.append({"name": i.name, "shape": dims, "dtype": ORT_DTYPES.get(i.type, "float32")})
        self.output_names = [o.name for o in self.session.get_outputs()]

    def end_profiling(self):
        if not self._profiling:
            return None
        self._profiling = False
        return self.session.end_profiling() or None

    def prepare(self, feeds):
        session = self.session

        def run():
            return session.run(None, feeds)
        return run


ENGINE = OrtEngine
