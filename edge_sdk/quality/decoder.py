"""Decoder LLM quality: the compressed ONNX decoder's next-token predictions against the uncompressed PyTorch model.

On every position of every evaluation text (teacher forcing, one prefill pass per text, empty KV cache):
- top-1 agreement: the share of positions where both pick the same next token (gated: >= 1 - max_quality_drop);
- perplexity of each model on the text's own next tokens, and the relative change (candidate / reference - 1).
Embedding cosine means nothing for a decoder, so the report's `cosine_drop` carries 1 - top-1 agreement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..schemas.bundle import QualityMetric, QualityReport

LogitsFn = Callable[[np.ndarray], np.ndarray]  # token ids [T] int64 → logits [T, vocab] float32


def token_rows(tokenizer, texts: Sequence[str], max_tokens: int) -> list[np.ndarray]:
    """Each text as token ids, the BOS token first when the tokenizer has one, at most `max_tokens` long."""
    bos = getattr(tokenizer, "bos_token_id", None)
    rows = []
    for t in texts:
        ids = list(tokenizer(t, add_special_tokens=True)["input_ids"])
        if bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        ids = ids[:max_tokens]
        if len(ids) >= 2:
            rows.append(np.asarray(ids, dtype=np.int64))
    return rows


def torch_logits_fn(model) -> LogitsFn:
    import torch

    def run(ids: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(ids[None])).logits[0].float().numpy()

    return run


def onnx_logits_fn(model_path, threads: int | None = None) -> LogitsFn:
    """One prefill pass through a genai-built decoder (past_key_values.* of length 0), as plain onnxruntime; the
    KV-cache shape comes from the genai_config.json beside the model."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    ins = sess.get_inputs()
    dec = json.loads((Path(model_path).parent / "genai_config.json").read_text())["model"]["decoder"]
    kv_shape = (1, int(dec["num_key_value_heads"]), 0, int(dec["head_size"]))

    def run(ids: np.ndarray) -> np.ndarray:
        feed: dict[str, np.ndarray] = {}
        for i in ins:
            if i.name == "input_ids":
                feed[i.name] = ids[None]
            elif i.name == "attention_mask":
                feed[i.name] = np.ones((1, len(ids)), dtype=np.int64)
            elif i.name == "position_ids":
                feed[i.name] = np.arange(len(ids), dtype=np.int64)[None]
            elif i.name.startswith("past_key_values"):
                dt = np.float16 if "float16" in i.type else np.float32
                feed[i.name] = np.zeros(kv_shape, dtype=dt)
        return sess.run(["logits"], feed)[0][0].astype(np.float32)

    return run


def _nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -logp[np.arange(len(targets)), targets]


def next_token_quality(reference: LogitsFn, candidate: LogitsFn, rows: list[np.ndarray], *, eval_name: str,
                       max_quality_drop: float) -> QualityReport:
    agree = total = 0
    nll_ref: list[np.ndarray] = []
    nll_cand: list[np.ndarray] = []
    for ids in rows:
        r, c = reference(ids)[:-1], candidate(ids)[:-1]
        if c.shape[0] != r.shape[0]:  # the builder may keep only the last position's logits
            raise ValueError(f"candidate returned logits for {c.shape[0] + 1} positions, expected {len(ids)}")
        agree += int((r.argmax(-1) == c.argmax(-1)).sum())
        total += len(ids) - 1
        nll_ref.append(_nll(r, ids[1:]))
        nll_cand.append(_nll(c, ids[1:]))
    top1 = agree / max(total, 1)
    ppl_ref = float(np.exp(np.concatenate(nll_ref).mean()))
    ppl_cand = float(np.exp(np.concatenate(nll_cand).mean()))
    delta = ppl_cand / ppl_ref - 1.0
    ref = "uncompressed PyTorch model"
    metrics = [QualityMetric(name="top1_agreement", value=round(top1, 6), reference=ref),
               QualityMetric(name="perplexity_reference", value=round(ppl_ref, 4), reference="the text itself"),
               QualityMetric(name="perplexity", value=round(ppl_cand, 4), reference="the text itself"),
               QualityMetric(name="perplexity_delta", value=round(delta, 6), reference=ref),
               QualityMetric(name="positions", value=float(total), reference="next-token predictions compared")]
    need = 1.0 - max_quality_drop
    failed = [] if top1 >= need - 1e-12 else [f"next-token top-1 agreement {top1:.4f} < {need:.4f}"]
    return QualityReport(eval_data=eval_name, samples=len(rows), metrics=metrics, max_quality_drop=max_quality_drop,
                         cosine_drop=round(1.0 - top1, 6), passed=not failed, failed=failed)
