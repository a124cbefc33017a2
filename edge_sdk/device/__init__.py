"""The device side of edge-sdk: a small package copied whole into every bundle as `edge_device/`.

It runs on bare devices, so it needs only the standard library, numpy and ONE runtime (onnxruntime for .onnx;
ai_edge_litert, else tflite_runtime, for .tflite), imports nothing from edge_sdk, uses relative imports only and
keeps Python 3.8 syntax. Each module answers one question:

  __main__   the commands: python3 -m edge_device bench|predict|release|kill|probe ...
  predict    Model(bundle).run / embed / classify — using a bundle from an application
  bench      the benchmark loop            engines/   one module per runtime, chosen by artifact format
  inputs     sample inputs and feeds       text       raw text → token arrays (optional `tokenizers`)
  integrity  sha256 and manifest checks    stats      RSS, CPU model, board
  power      tegrastats                    watchdog   deadlines, helper processes
  events     JSON-lines output             errors     exit codes
  release    releases on the device        kill       stopping a process tree      probe   machine facts
  deploylock one deploy at a time per device (held while the host deploys)

On the host the same package is importable as `edge_sdk.device`.
"""

__all__ = ["Model"]


def __getattr__(name):  # PEP 562: `from edge_device import Model` without importing numpy for other commands
    if name == "Model":
        from .predict import Model

        return Model
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
