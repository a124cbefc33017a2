"""Run an OpenVINO IR artifact (model.xml + model.bin) as an embed function, the way the device will run it.

Compiled like the device engine compiles it (`device/engines/openvino.py`): CPU plugin, LATENCY hint, the
bundle's thread count, and the plan's inference precision (f32 unless the plan says bf16), so the quality gate
measures what gets deployed — on a CPU with AMX, OpenVINO would otherwise pick bf16 on its own.
"""

from __future__ import annotations

import os

import numpy as np

from .runners import EmbedFn, batched_embed


def compile_openvino(path: str | os.PathLike[str], *, threads: int = 2, device: str = "CPU",
                     precision_hint: str = "f32"):
    """An OpenVINO compiled model for `path` (model.xml; its .bin beside it)."""
    import openvino as ov

    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": int(threads)}
    if device == "CPU":
        # an f16 (GPU/NPU) plan is measured here with its fp16 weights computed in f32: most CPUs have no fp16
        # arithmetic, and the weights' rounding is the part of fp16's error that a CPU can show
        config["INFERENCE_PRECISION_HINT"] = "f32" if precision_hint == "f16" else precision_hint
    return ov.Core().compile_model(os.fspath(path), device, config)


def openvino_embed_fn(path: str | os.PathLike[str], tokenizer=None, *, threads: int = 2, batch_size: int = 16,
                      max_length: int = 256, precision_hint: str = "f32", output: str | None = None) -> EmbedFn:
    """Like `onnx_embed_fn`, over an OpenVINO compiled model."""
    compiled = compile_openvino(path, threads=threads, precision_hint=precision_hint)
    in_names = [i.get_any_name() for i in compiled.inputs]
    out_names = [o.get_any_name() for o in compiled.outputs]
    if output is None:
        output = next((n for n in ("logits", "embeddings") if n in out_names), out_names[0])
    elif output not in out_names:
        raise ValueError(f"{path}: no output named {output!r} (outputs: {out_names})")
    port = compiled.outputs[out_names.index(output)]
    request = compiled.create_infer_request()
    run = batched_embed(lambda feed: request.infer(feed)[port], in_names, tokenizer, batch_size=batch_size,
                        max_length=max_length)
    run.output = output  # type: ignore[attr-defined]
    return run
