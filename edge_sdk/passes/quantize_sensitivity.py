"""Which weight MatMuls must stay in float for static int8 — measured on this model, not a fixed list?

The FFN down-projections of BERT-family models read GELU outputs whose outliers one fixed activation scale cannot
hold (`quantize_onnx.ffn_down_projections`), but which layers suffer, and how much, differs per model (pruned
models, ViTs, other activations). So, with `sensitivity: true`:

1. every weight MatMul is quantized (static QDQ, the build's own `quantize_static_int8`);
2. onnxruntime's own QDQ debugging tools (`onnxruntime.quantization.qdq_loss_debug`: the QDQ model made to
   output every tensor before and after its QuantizeLinear→DequantizeLinear pair, run on calibration inputs)
   give each MatMul's activation input its signal-to-quantization-noise ratio: where one fixed scale fails
   (GELU outliers, attention outputs), the SQNR is low;
3. the lowest-SQNR MatMuls are returned to float, 0, 1, 2, 4, 8, … of them, until the embedding cosine to the fp32
   model on held-back calibration inputs (never the build's evaluation set) is within `max_drop`.

Each step is one real quantization and one evaluation, so the search costs a few quantizations (tens of seconds for
MiniLM); the log names every MatMul kept in float with its SQNR.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..quality.runners import ort_session
from ..quiet import quiet


def calibration_reader(feeds: list[dict[str, np.ndarray]]):
    """onnxruntime's CalibrationDataReader over prepared feeds (one real input per call)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(feeds)

    return Feeds()


def _last_output(path: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """The model's last output (the pooled embedding / logits), one row per feed."""
    session = ort_session(path, threads=2)
    name = session.get_outputs()[-1].name
    rows = [np.asarray(session.run([name], f)[0], dtype=np.float32).reshape(1, -1) for f in feeds]
    return np.concatenate(rows)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))


def ranked_matmuls(src: Path, qdq: Path, feeds: list[dict[str, np.ndarray]],
                   candidates: list[str]) -> list[tuple[str, float]]:
    """(MatMul node name, SQNR in dB of its activation input after QuantizeLinear→DequantizeLinear), the most
    damaged first. The local error of each MatMul's own input is what ranks it: an error accumulated through the
    layers before it would make every late layer look bad."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                         compute_signal_to_quantization_noice_ratio,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    graph = onnx.load(os.fspath(src), load_external_data=False).graph
    wanted = set(candidates)
    input_of = {n.name: n.input[0] for n in graph.node if n.name in wanted}
    with tempfile.TemporaryDirectory(prefix="edge-sdk-sqnr-") as d, quiet():
        aug = Path(d) / "qdq.onnx"
        modify_model_output_intermediate_tensors(os.fspath(qdq), os.fspath(aug),
                                                 op_types_for_saving=["QuantizeLinear", "DequantizeLinear"])
        qa = collect_activations(os.fspath(aug), calibration_reader(feeds))
        match = create_activation_matching(qa)
    scored = [(node, float(compute_signal_to_quantization_noice_ratio(match[t]["pre_qdq"], match[t]["post_qdq"])))
              for node, t in input_of.items() if t in match and "pre_qdq" in match[t] and "post_qdq" in match[t]]
    return sorted(scored, key=lambda x: x[1])


def choose_float_set(src: Path, dst: Path, calib: list[dict[str, np.ndarray]], held: list[dict[str, np.ndarray]],
                     candidates: list[str], quantize: Callable[[Path, list[str]], None],
                     max_drop: float) -> dict:
    """Quantize `src` into `dst` keeping the fewest most-sensitive MatMuls in float that meet `max_drop` on `held`.
    `quantize(out, keep_float)` runs the static quantizer. Returns what was measured (for the build log)."""
    ref = _last_output(src, held)
    tried: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="edge-sdk-sensitivity-") as d:
        first = Path(d) / "all.onnx"
        quantize(first, [])
        cos = mean_cosine(ref, _last_output(first, held))
        tried.append((0, round(cos, 5)))
        ranked = ranked_matmuls(src, first, calib[:8], candidates) if 1 - cos > max_drop else []
        best, kept = first, []

        def attempt(k: int) -> tuple[Path, float]:
            path = Path(d) / f"keep{k}.onnx"
            quantize(path, [name for name, _ in ranked[:k]])
            c = mean_cosine(ref, _last_output(path, held))
            tried.append((k, round(c, 5)))
            return path, c

        for k in sorted({min(2 ** i, len(ranked)) for i in range(16)} - {0}):  # 1, 2, 4, ..., all of them
            if 1 - cos <= max_drop:
                break
            best, cos = attempt(k)
            kept = [name for name, _ in ranked[:k]]
        hi = len(kept)
        lo = max((k for k, c in tried if 1 - c > max_drop), default=0)
        while 1 - cos <= max_drop and hi - lo > 1:  # the doubling overshot: bisect for the fewest that still pass
            mid = (lo + hi) // 2
            path, c = attempt(mid)
            if 1 - c <= max_drop:
                best, cos, hi, kept = path, c, mid, [name for name, _ in ranked[:mid]]
            else:
                lo = mid
        os.replace(best, dst)
    sqnr = dict(ranked)
    return {"kept_float": kept, "kept_float_sqnr_db": {n: round(sqnr[n], 2) for n in kept},
            "sensitivity_tried": tried, "sensitivity_max_drop": max_drop, "sensitivity_met": 1 - cos <= max_drop,
            "held_back_inputs": len(held)}
