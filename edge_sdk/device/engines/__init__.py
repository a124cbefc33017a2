"""Runtime engines, one module per runtime, chosen by the artifact's format.

Every engine has the small interface of `base.Engine`. Adding a runtime (OpenVINO, ...) means adding one module
here with an `ENGINE` class and one entry in `ENGINES`; nothing else on the device side changes. Engine modules are
imported only when their format is asked for, so a device needs only the runtime of its own artifacts.
"""

import importlib
import os

from ..errors import EXIT_BAD_INPUT, DeviceError

# artifact format → engine module in this package
ENGINES = {"onnx": "ort", "tflite": "litert"}
# the manifest's `runtime` names → artifact format
RUNTIME_FORMATS = {"onnxruntime": "onnx", "litert": "tflite"}


def engine_class(fmt):
    name = ENGINES.get(fmt)
    if name is None:
        raise DeviceError("artifact format %r is not runnable here (%s)" % (fmt, " or ".join(sorted(ENGINES))),
                          EXIT_BAD_INPUT)
    return importlib.import_module("." + name, __name__).ENGINE


def open_engine(path, fmt=None, provider=None, threads=None):
    """An engine with the model at `path` loaded; `fmt` defaults to the file's extension."""
    fmt = fmt or os.path.splitext(path)[1].lstrip(".")
    return engine_class(fmt)(path, provider, threads)


__all__ = ["ENGINES", "RUNTIME_FORMATS", "engine_class", "open_engine"]
