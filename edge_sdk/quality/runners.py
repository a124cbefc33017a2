"""How is a model or an artifact run to get outputs the quality gate can compare?

An *embed function* maps a batch of inputs (a list of strings, or a float32 (N, C, H, W) array of pixel_values)
to a float32 (N, D) array: pooled L2-normalised embeddings, or logits for classifiers (see `outputs.py`). Its
attribute `output` names what it returns ("embeddings" or "logits"), so the gate knows a classifier when it sees
one.
The reference side runs the PyTorch model; candidate sides run the real artifact the bundle will ship (an
onnxruntime session over the .onnx file here; a LiteRT interpreter for .tflite lives with the TFLite pass), so
what is measured is what gets deployed.

Both sides tokenize the same way (same tokenizer, padding to the longest input of each batch, truncation at
`max_length`) so they see identical token ids.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from .outputs import mean_pool_l2

Inputs = Sequence[str] | np.ndarray
EmbedFn = Callable[[Inputs], np.ndarray]


def ort_session(path: str | os.PathLike[str], threads: int = 2):
    """An onnxruntime CPU session with `threads` intra-op threads and thread spinning OFF: spinning idle threads
    steal the cores from whatever runs next (measured here: PyTorch 40 → 97 ms beside a spinning session)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), sess_options=so, providers=["CPUExecutionProvider"])


def tokenize(tokenizer, texts: Sequence[str], max_length: int = 256) -> dict[str, np.ndarray]:
    """int64 numpy inputs, padded to the longest text of this batch."""
    limit = min(max_length, int(getattr(tokenizer, "model_max_length", max_length) or max_length))
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def _batches(inputs: Inputs, batch_size: int):
    for i in range(0, len(inputs), batch_size):
        yield inputs[i:i + batch_size]


def onnx_embed_fn(path: str | os.PathLike[str], tokenizer=None, *, threads: int = 2, batch_size: int = 16,
                  max_length: int = 256, output: str | None = None) -> EmbedFn:
    """Run the .onnx artifact itself. Output choice: `output` if given, else `logits`, else `embeddings`, else
    the first output pooled like the export would have pooled it (mean over the mask for text, CLS for vision)."""
    session = ort_session(path, threads)
    in_names = [i.name for i in session.get_inputs()]
    out_names = [o.name for o in session.get_outputs()]
    if output is None:
        output = next((n for n in ("logits", "embeddings") if n in out_names), out_names[0])
    elif output not in out_names:
        raise ValueError(f"{path}: no output named {output!r} (outputs: {out_names})")
    run = batched_embed(lambda feed: session.run([output], feed)[0], in_names, tokenizer, batch_size=batch_size,
                        max_length=max_length)
    run.session = session  # type: ignore[attr-defined]  # for callers that want its signature
    run.output = output  # type: ignore[attr-defined]  # "logits" tells the gate it is a classifier
    return run


def batched_embed(infer: Callable[[dict[str, np.ndarray]], np.ndarray], in_names: list[str], tokenizer, *,
                  batch_size: int, max_length: int) -> EmbedFn:
    """An embed function over any runtime's `infer(feed) -> output`: batches, tokenizes (text) and pools token
    vectors as the in-graph head would."""
    vision = "pixel_values" in in_names or tokenizer is None

    def run(inputs: Inputs) -> np.ndarray:
        parts = []
        for chunk in _batches(inputs, batch_size):
            if vision:
                feed = {in_names[0]: np.ascontiguousarray(chunk, dtype=np.float32)}
            else:
                enc = tokenize(tokenizer, chunk, max_length)
                feed = {n: enc[n] if n in enc else np.zeros_like(enc["input_ids"]) for n in in_names}
            y = np.asarray(infer(feed))
            if y.ndim == 3:  # token vectors: pool them as the in-graph head would
                y = (mean_pool_l2(y, feed["attention_mask"]) if not vision
                     else y[:, 0] / np.linalg.norm(y[:, 0], axis=-1, keepdims=True))
            parts.append(y.astype(np.float32))
        return np.concatenate(parts, axis=0)

    return run


def torch_embed_fn(model, tokenizer=None, *, batch_size: int = 16, max_length: int = 256) -> EmbedFn:
    """Run a PyTorch model with the same pooling head the ONNX export bakes in (`outputs.wrap`)."""
    import torch

    from ..arch.outputs import detect_head, wrap

    model = model.eval()
    kind = "text" if tokenizer is not None else "vision"
    state: dict[str, object] = {}

    def run(inputs: Inputs) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for chunk in _batches(inputs, batch_size):
                if kind == "vision":
                    args = (torch.as_tensor(np.ascontiguousarray(chunk, dtype=np.float32)),)
                    kwargs_probe = {"pixel_values": args[0]}
                else:
                    enc = tokenize(tokenizer, chunk, max_length)
                    ids = torch.from_numpy(enc["input_ids"])
                    mask = torch.from_numpy(enc["attention_mask"])
                    tt = torch.from_numpy(enc["token_type_ids"]) if "token_type_ids" in enc else None
                    args = (ids, mask, tt)
                    kwargs_probe = {"input_ids": ids, "attention_mask": mask}
                if "wrapper" not in state:
                    state["wrapper"] = wrap(model, kind, detect_head(model(**kwargs_probe)))
                    run.output = state["wrapper"].output_names()[-1]  # type: ignore[attr-defined]
                y = state["wrapper"](*args)[-1]
                parts.append(y.float().numpy())
        return np.concatenate(parts, axis=0)

    run.output = None  # type: ignore[attr-defined]  # known after the first call
    return run
