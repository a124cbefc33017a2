"""Runtime engines, one module per runtime, chosen by the artifact's format.

Every engine has the small interface of `base.Engine`. Adding a runtime (OpenVINO, ...) means adding one module
here with an `ENGINE` class and one entry in `ENGINES`; nothing else on the device side changes. Engine modules are
imported only when their format is asked for, so a device needs only the runtime of its own artifacts.
"""

import importlib
import os

from ..errors import EXIT_BAD_INPUT, DeviceError

# artifact format → engine module in this package
ENGINES = {"onnx": "ort", "tflite": "litert", "openvino": "openvino"}
# the manifest's `runtime` names → artifact format
RUNTIME_FORMATS = {"onnxruntime": "onnx", "litert": "tflite", "openvino": "openvino"}
# file extension → format, where they differ (OpenVINO IR is model.xml + model.bin)
EXTENSION_FORMATS = {"xml": "openvino"}


def engine_class(fmt):
    name = ENGINES.get(fmt)
    if name is None:
        raise DeviceError("artifact format %r is not runnable here (%s)" % (fmt, " or ".join(sorted(ENGINES))),
                          EXIT_BAD_INPUT)
    return importlib.import_module("." + name, __name__).ENGINE


def open_engine(path, fmt=None, provider=None, threads=None, profile_prefix=None, runtime_config=None):
    """An engine with the model at `path` loaded; `fmt` defaults to the file's extension. `profile_prefix`: switch
    the runtime's op profiler on, writing under that path prefix (engines without one ignore it and say why in
    `op_profile_unavailable`). `runtime_config`: the manifest artifact's settings (OpenVINO properties; onnxruntime
    session config entries; other engines take none)."""
    ext = os.path.splitext(path)[1].lstrip(".")
    fmt = fmt or EXTENSION_FORMATS.get(ext, ext)
    cls = engine_class(fmt)
    kwargs = {}
    if profile_prefix is not None and cls.op_profile_unavailable is None:
        kwargs["profile_prefix"] = profile_prefix
    if runtime_config:
        if fmt not in ("openvino", "onnx"):
            raise DeviceError("runtime_config %r is only understood by the openvino and onnxruntime engines, not %s"
                              % (runtime_config, fmt), EXIT_BAD_INPUT)
        kwargs["runtime_config"] = runtime_config
    return cls(path, provider, threads, **kwargs)


__all__ = ["ENGINES", "RUNTIME_FORMATS", "engine_class", "open_engine"]
