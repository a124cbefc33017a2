"""How is a .tflite artifact run to get outputs the quality gate can compare?

The LiteRT twin of `onnx_embed_fn` in runners.py (same contract: a list of texts, or a float32 (N, C, H, W) array
of pixel_values → float32 (N, D)), running the very file the bundle ships in ai-edge-litert's Interpreter — the
runtime the device uses — so what is measured is what gets deployed.

Differences from ONNX that the caller should know:
- The graph has static shapes (batch 1, `seq_len` tokens), so inputs go one at a time and every text is padded
  to `seq_len` and truncated there. The returned function carries `seq_len`: give the PyTorch reference the same
  `max_length` so both sides see the same tokens (padding itself changes nothing: pooling uses the mask).
- Token inputs are int32 (litert-torch narrows int64). Outputs of a fully int8 model are int8 and are
  dequantized here with the tensor's scale and zero point.
"""

from __future__ import annotations

import os

import numpy as np

from .outputs import mean_pool_l2
from .runners import EmbedFn, Inputs


def litert_interpreter(path: str | os.PathLike[str], threads: int = 2):
    """An ai-edge-litert Interpreter (XNNPACK CPU) with `threads` threads, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    """float32 values of an output tensor. Fully int8 models (ai-edge-quantizer's static recipe) also quantize
    their outputs: real = (q - zero_point) * scale, from the tensor's (scale, zero_point)."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(np.asarray(array).dtype, np.integer) and scale:
        return ((np.asarray(array, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale))
    return np.array(array, dtype=np.float32)  # a copy: the runtime reuses its buffers


def tflite_embed_fn(path: str | os.PathLike[str], tokenizer=None, *, threads: int = 2,
                    output: str | None = None) -> EmbedFn:
    """Run the .tflite artifact itself, one input at a time. Output choice like `onnx_embed_fn`: `output` if
    given, else `logits`, else `embeddings`, else the first output pooled as the export would have pooled it."""
    runner = litert_interpreter(path, threads).get_signature_runner()
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    out_names = list(out_details)
    if output is None:
        output = next((n for n in ("logits", "embeddings") if n in out_names), out_names[0])
    elif output not in out_names:
        raise ValueError(f"{path}: no output named {output!r} (outputs: {out_names})")
    vision = "pixel_values" in in_details or tokenizer is None
    first = in_details["pixel_values" if "pixel_values" in in_details else next(iter(in_details))]
    static_shape = tuple(int(x) for x in first["shape"])
    if static_shape[0] != 1:
        raise ValueError(f"{path}: expected batch 1 inputs, got shape {static_shape}")
    seq_len = None if vision else static_shape[1]

    def feed_for(item) -> dict[str, np.ndarray]:
        if vision:
            px = np.ascontiguousarray(item, dtype=np.float32)[None]
            if px.shape[1:] != static_shape[1:]:
                raise ValueError(f"{path}: image has shape {px.shape[1:]}, the model takes {static_shape[1:]}")
            return {"pixel_values": px}
        enc = tokenizer([item], padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
        ids = np.asarray(enc["input_ids"], dtype=np.int32)
        return {n: (np.asarray(enc[n], dtype=np.int32) if n in enc else np.zeros_like(ids)) for n in in_details}

    def run(inputs: Inputs) -> np.ndarray:
        rows = []
        for item in inputs:
            feed = feed_for(item)
            y = dequantize(runner(**feed)[output], out_details[output])
            if y.ndim == 3:  # token vectors: pool them as the in-graph head would
                y = (mean_pool_l2(y, feed["attention_mask"]) if not vision
                     else y[:, 0] / np.linalg.norm(y[:, 0], axis=-1, keepdims=True))
            rows.append(y.reshape(1, -1))
        if not rows:
            return np.zeros((0, int(out_details[output]["shape"][-1])), dtype=np.float32)
        return np.concatenate(rows, axis=0)

    run.seq_len = seq_len  # type: ignore[attr-defined]
    run.runner = runner  # type: ignore[attr-defined]
    return run
