"""LiteRT (TFLite) engine for .tflite artifacts: ai_edge_litert, else tflite_runtime; delegates by provider name."""

import os
import time

from ..errors import EXIT_RUNTIME, DeviceError
from ..opprofile import LITERT_UNAVAILABLE
from .base import Engine, dist_version, module_version

# Known LiteRT delegate libraries, by the provider name device profiles use. "xnnpack"/"cpu" need none.
TFLITE_DELEGATE_LIBS = {
    "edgetpu": "libedgetpu.so.1",
    "gpu": "libtensorflowlite_gpu_delegate.so",
    "vx": "libvx_delegate.so",
    "qnn": "libQnnTFLiteDelegate.so",
    "tflite-delegate": "libtidl_tfl_delegate.so",
}
TFLITE_CPU_PROVIDERS = ("", "cpu", "xnnpack")


class TfliteEngine(Engine):
    runtime = "litert"
    op_profile_unavailable = LITERT_UNAVAILABLE

    def __init__(self, path, provider, threads, profile_prefix=None):
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
            self.version = dist_version(*dist) or module_version(self.module)
            break
        if mod is None:
            raise DeviceError("no LiteRT runtime on this device (%s); install it with "
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
            raise DeviceError("%s cannot load %s: %s" % (self.module, os.path.basename(path), exc), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.provider_used = requested if delegates else "xnnpack"
        self.inputs = []
        self._details = self.interpreter.get_input_details()
        for d in self._details:
            sig = d.get("shape_signature")
            sig = list(sig) if sig is not None and len(sig) else list(d["shape"])
            self.inputs.append({"name": d["name"], "shape": [int(x) if int(x) > 0 else None for x in sig],
                                "dtype": d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"])})
        out_details = self.interpreter.get_output_details()
        self._outputs = [d["index"] for d in out_details]
        self.output_names = [d["name"] for d in out_details]

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


ENGINE = TfliteEngine
