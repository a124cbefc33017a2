"""How is the fp32 ONNX export turned into a smaller artifact, and which precision costs how much quality?

All four modes use the field's tools (onnxruntime.quantization, onnxruntime.transformers) and write a new file
next to the fp32 export (`model.onnx` → `model.int8_dynamic.onnx`, ...), under a temporary name renamed when done.
Numbers below: MiniLM, mean cosine to PyTorch fp32 on 64 of the shipped sentences, measured here.

- dynamic_int8: `quantize_dynamic`, QInt8 weights, per-channel by default. Activations are quantized at run
  time per tensor, so there is nothing to calibrate and no outlier can be mis-calibrated: the robust choice
  (cosine 0.9934, 23.0 MB of 90.4; the toolchain notes measured 0.9915 per-channel vs 0.9638 per-tensor).
- static_int8: `quantize_static`, QDQ format, MinMax calibration on real inputs (`BuildState.calibration_texts`
  / `calibration_images`, one input per run at its natural length). Measured on MiniLM (64 of the shipped
  sentences, calibrated on 64 others): every QDQ-capable op → cosine 0.838; the same minus the six FFN
  down-projections → 0.839; only weight MatMuls + embedding Gathers, FFN down-projections in float → 0.991.
  The FFN down-projection reads the GELU output, whose outliers one fixed scale cannot hold; those MatMuls are
  found by graph structure (`ffn_down_projections`) and kept in float. Attention's QK^T and softmax·V stay in
  float (`MatMulConstBOnly`). Activations uint8, weights int8 with `reduce_range` (7-bit) by default — the
  setup onnxruntime recommends for x86 without VNNI, measured here (MiniLM, 1 thread, interleaved, vs ORT fp32):
  U8S8 + reduce_range: cosine 0.989, 1.45x faster (real lengths) / 1.33x (padded 128);
  U8S8 full range: cosine 0.74 (the uint8×int8 products saturate in AVX2's 16-bit accumulation);
  S8S8: cosine 0.991 but 0.3x / 0.6x — *slower than fp32*: no fast S8S8 kernel on this CPU.
  `reduce_range=false` suits VNNI and ARM targets. Dynamic int8 is still faster (2.4x / 1.9x) and more accurate.
  Percentile/entropy calibration are not offered: they fail on these graphs (the attention mask holds
  -inf / finfo.min).
- fp16: `convert_float_to_float16(keep_io_types=True)` (onnxruntime's maintained copy of the onnxconverter-common
  converter; see `convert_fp16` for why): inputs/outputs stay float32 so the caller does not change. Half the
  size (45.3 MB), cosine 1.0000; not faster on CPUs without fp16 arithmetic.
- int4_weight_only: `MatMulNBitsQuantizer` (block-wise symmetric 4-bit MatMul weights, block size from the
  config); activations and the other ops stay float: cosine 0.971 at block 32 (54.6 MB), 0.954 at block 128.
  Embedding tables stay float (half of MiniLM's weights): quantizing Gather too upgrades the opset and breaks
  the graph (ReduceL2's `axes` attribute) in onnxruntime 1.32.

`quant_pre_process` is not run: on these exports it only works with `skip_symbolic_shape=True`, and then adds
nothing the quantizers need. Every result is opened in onnxruntime and run once before it is accepted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..quiet import quiet
from ..errors import InputError, ToolError
from ..quality.runners import ort_session, tokenize
from ..schemas.passes import QuantizeOnnxConfig
from .registry import register
from .state import ArtifactRecord, BuildState

SUFFIX = {"dynamic_int8": "int8_dynamic", "static_int8": "int8_static", "fp16": "fp16",
          "int4_weight_only": "int4"}
PRECISION = {"dynamic_int8": "int8_dynamic", "static_int8": "int8_static", "fp16": "fp16",
             "int4_weight_only": "int4_weight_only"}

#: static int8 quantizes weight MatMuls and embedding lookups only; quantizing every op QDQ supports (LayerNorm,
#: Add, Where, ...) measured MiniLM cosine 0.839 even with the FFN down-projections kept in float.
STATIC_OPS = ("MatMul", "Gather")
#: contrib ops of onnxruntime's transformer fusion that QDQ cannot quantize (their weights would stay float)
_FUSED_UNQUANTIZABLE = {"Attention", "MultiHeadAttention", "EmbedLayerNormalization"}
#: ops that end an FFN's up-projection: activation functions, decomposed (Erf/Tanh/Sigmoid) or fused.
_ACTIVATIONS = {"Erf", "Tanh", "Sigmoid", "Relu", "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "GemmFastGelu"}
#: element-wise ops a decomposed activation is made of; the backwards walk passes through them only.
_ELEMENTWISE = {"Mul", "Add", "Div", "Sub", "Pow", "Sqrt", "Cast", "Identity"}


class QuantizeError(ToolError):
    """onnxruntime could not quantize or run the quantized model."""




# --------------------------------------------------------------------------------------- graph structure
def ffn_down_projections(model) -> list[str]:
    """Names of the MatMul nodes that read an activation function's output (the FFN down-projections).

    Walks back from each weight MatMul's activation input through element-wise ops only (the decomposed
    GELU is Div → Erf → Add → Mul → Mul), at most 6 nodes; if it meets an activation op before any MatMul or
    normalisation, the MatMul is a down-projection. Found by structure, not by name, so it works for BERT, ViT,
    pruned models and fused graphs (BiasGelu) alike.
    """
    graph = model.graph
    consts = {i.name for i in graph.initializer}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n for n in graph.node for o in n.output}
    found = []
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2 or node.input[1] not in consts:
            continue
        frontier, seen, hit = [node.input[0]], set(), False
        for _ in range(6):
            nxt = []
            for tensor in frontier:
                p = producer.get(tensor)
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                if p.op_type in _ACTIVATIONS:
                    hit = True
                    break
                if p.op_type in _ELEMENTWISE:
                    nxt.extend(i for i in p.input if i not in consts)
            if hit or not nxt:
                break
            frontier = nxt
        if hit:
            found.append(node.name)
    return found


# --------------------------------------------------------------------------------------- calibration
def _calibration_reader(feeds: list[dict[str, np.ndarray]]):
    """Hands onnxruntime's calibrator one real input per call."""
    from .quantize_sensitivity import calibration_reader

    return calibration_reader(feeds)


def calibration_feeds(model_path: Path, *, texts: Sequence[str] = (), tokenizer=None,
                      images: np.ndarray | None = None) -> list[dict[str, np.ndarray]]:
    """One feed per input, batch 1, natural length (no padding: real inputs are ~10–20 tokens, and padding
    would calibrate on pad positions)."""
    session = ort_session(model_path, threads=1)
    names = [i.name for i in session.get_inputs()]
    feeds = []
    if "pixel_values" in names:
        if images is None or len(images) == 0:
            raise InputError("static_int8 on a vision model needs calibration images")
        for img in images:
            feeds.append({"pixel_values": np.ascontiguousarray(img[None], dtype=np.float32)})
        return feeds
    if tokenizer is None:
        raise InputError("static_int8 on a text model needs the tokenizer to make calibration inputs")
    for text in texts:
        enc = tokenize(tokenizer, [text])
        feeds.append({n: enc[n] if n in enc else np.zeros_like(enc["input_ids"]) for n in names})
    if not feeds:
        raise InputError("static_int8 needs calibration texts; none were given")
    return feeds


# --------------------------------------------------------------------------------------- the four modes
def quantize_dynamic_int8(src: Path, dst: Path, *, per_channel: bool = True) -> dict:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # fused graphs (Attention, EmbedLayerNormalization) need a default tensor type for their contrib ops
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    with quiet():
        quantize_dynamic(os.fspath(src), os.fspath(dst), per_channel=per_channel, weight_type=QuantType.QInt8,
                         extra_options=extra)
    return {"per_channel": per_channel, "weight_type": "QInt8"}


def weight_matmuls(model) -> list[str]:
    """Names of the MatMul nodes with a constant weight (what static int8 quantizes)."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in consts]


def quantize_static_measured(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], *, per_channel: bool,
                             reduce_range: bool, max_drop: float) -> dict:
    """Static int8 keeping in float exactly the MatMuls this model needs (passes/quantize_sensitivity.py)."""
    import onnx

    from .quantize_sensitivity import choose_float_set

    held_n = min(16, max(1, len(feeds) // 4))
    calib, held = feeds[:-held_n] if len(feeds) > held_n else feeds, feeds[-held_n:]
    candidates = weight_matmuls(onnx.load(os.fspath(src), load_external_data=False))

    def run(out: Path, keep: list[str]) -> None:
        quantize_static_int8(src, out, calib, per_channel=per_channel, exclude_ffn_down=False,
                             reduce_range=reduce_range, keep_float=keep)

    found = choose_float_set(src, dst, calib, held, candidates, run, max_drop)
    return {"per_channel": per_channel, "calibration": "MinMax", "calibration_samples": len(calib),
            "activations": "uint8", "reduce_range": reduce_range, "op_types": list(STATIC_OPS), **found}


def quantize_static_int8(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], *, per_channel: bool = True,
                         exclude_ffn_down: bool = True, reduce_range: bool = True,
                         keep_float: list[str] | None = None) -> dict:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    graph = onnx.load(os.fspath(src))
    fused = sorted({n.op_type for n in graph.graph.node if n.op_type in _FUSED_UNQUANTIZABLE})
    if fused:
        # measured on MiniLM: only 12 of 36 weight MatMuls quantized, 77 MB of 90 — int8 in name only
        raise InputError(f"static_int8 cannot quantize the fused {', '.join(fused)} nodes of {src.name} (QDQ has no "
                         f"kernels for them; their weights would stay float): export with optimize=false, or use "
                         f"dynamic_int8, which quantizes fused graphs")
    excluded = list(keep_float or []) + (ffn_down_projections(graph) if exclude_ffn_down else [])
    if exclude_ffn_down and not excluded:
        raise QuantizeError(f"static_int8: found no FFN down-projection in {src.name} to keep in float; "
                            f"quantizing them destroys transformer quality — use dynamic_int8, or set "
                            f"exclude_ffn_down=false to accept that")
    with quiet():
        quantize_static(os.fspath(src), os.fspath(dst), _calibration_reader(feeds),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel, op_types_to_quantize=STATIC_OPS,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range,
                        nodes_to_exclude=excluded, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"per_channel": per_channel, "calibration": "MinMax", "calibration_samples": len(feeds),
            "activations": "uint8", "reduce_range": reduce_range, "op_types": list(STATIC_OPS), "kept_float": excluded}


def convert_fp16(src: Path, dst: Path) -> dict:
    """onnxruntime's fork of the onnxconverter-common converter (`onnxruntime.transformers.float16`).

    onnxconverter-common 1.16 itself writes a graph onnxruntime refuses to load when a graph output is also
    read inside the graph — ours: `last_hidden_state` feeds the pooling head ("Type parameter (T) of Optype (Mul)
    bound to different types"); onnxruntime's copy of the same converter inserts the right Casts."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with quiet():
        model = convert_float_to_float16(onnx.load(os.fspath(src)), keep_io_types=True)
    onnx.save_model(model, os.fspath(dst))
    return {"keep_io_types": True, "converter": "onnxruntime.transformers.float16"}


def quantize_int4(src: Path, dst: Path, *, block_size: int = 32) -> dict:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    with quiet():
        q = MatMulNBitsQuantizer(onnx.load(os.fspath(src)), bits=4, block_size=block_size, is_symmetric=True)
        q.process()
        q.model.save_model_to_file(os.fspath(dst), use_external_data_format=False)
    n = sum(1 for node in onnx.load(os.fspath(dst), load_external_data=False).graph.node
            if node.op_type == "MatMulNBits")
    if n == 0:
        raise QuantizeError(f"int4_weight_only: no MatMul in {src.name} could be quantized "
                            f"(block_size {block_size})")
    return {"block_size": block_size, "matmul_nbits_nodes": n}


def _smoke_run(path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Open the quantized file and run one input: a kernel onnxruntime lacks fails here, not on the device."""
    try:
        ort_session(path, threads=1).run(None, feeds[0])
    except Exception as exc:  # noqa: BLE001
        raise QuantizeError(f"quantized model {path.name} does not run in onnxruntime: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}") from None


def quantize_onnx(src: Path, config: QuantizeOnnxConfig, *, smoke_feed: dict[str, np.ndarray],
                  calibration: list[dict[str, np.ndarray]] | None = None, dst: Path | None = None
                  ) -> tuple[Path, dict]:
    """Quantize `src` per `config` into `dst` (default: next to src). Returns (path, details)."""
    src = Path(src)
    dst = Path(dst) if dst else src.with_name(f"{src.stem}.{SUFFIX[config.mode]}.onnx")
    tmp = dst.with_name(f".{dst.stem}.partial.onnx")
    started = time.perf_counter()
    try:
        if config.mode == "dynamic_int8":
            details = quantize_dynamic_int8(src, tmp, per_channel=config.per_channel)
        elif config.mode == "static_int8":
            if not calibration:
                raise InputError("static_int8 needs calibration inputs")
            if config.sensitivity:
                details = quantize_static_measured(src, tmp, calibration, per_channel=config.per_channel,
                                                   reduce_range=config.reduce_range, max_drop=config.max_drop)
            else:
                details = quantize_static_int8(src, tmp, calibration, per_channel=config.per_channel,
                                               exclude_ffn_down=config.exclude_ffn_down,
                                               reduce_range=config.reduce_range)
        elif config.mode == "fp16":
            details = convert_fp16(src, tmp)
        else:
            details = quantize_int4(src, tmp, block_size=config.block_size)
        _smoke_run(tmp, [smoke_feed])
        os.replace(tmp, dst)
    except (InputError, ToolError):
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are deep; say which mode and file
        raise QuantizeError(f"quantize_onnx {config.mode} of {src.name} failed: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        # quantize_static's augmented model and the int4 quantizer may leave files next to the source
        for leftover in src.parent.glob(f".{dst.stem}.partial*"):
            leftover.unlink(missing_ok=True)
    details["seconds"] = round(time.perf_counter() - started, 2)
    return dst, details


def _smoke_feed(src: Path, state: BuildState) -> dict[str, np.ndarray]:
    session = ort_session(src, threads=1)
    names = [i.name for i in session.get_inputs()]
    if "pixel_values" in names:
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        return {"pixel_values": np.zeros(shape, dtype=np.float32)}
    if state.tokenizer is not None:
        enc = tokenize(state.tokenizer, ["A short sentence to check that the model runs."])
    else:
        enc = {"input_ids": np.ones((1, 8), dtype=np.int64), "attention_mask": np.ones((1, 8), dtype=np.int64)}
    static = session.get_inputs()[0].shape
    if isinstance(static[-1], int):  # a static-shape export: pad to its length
        seq = static[-1]
        enc = {k: np.pad(v[:, :seq], ((0, 0), (0, max(0, seq - v.shape[1])))) for k, v in enc.items()}
    return {n: enc[n] if n in enc else np.zeros_like(enc["input_ids"]) for n in names}


@register(QuantizeOnnxConfig)
def apply(config: QuantizeOnnxConfig, state: BuildState) -> BuildState:
    """Quantize the newest fp32 ONNX artifact; the result becomes the newest ONNX artifact."""
    source = state.latest("onnx", "fp32")
    if source is None:
        raise InputError("quantize_onnx needs an fp32 ONNX model: put an export_onnx pass before it in the plan")
    calibration = None
    if config.mode == "static_int8":
        texts, images = list(state.calibration_texts), state.calibration_images
        if state.model_kind == "vision":
            if images is None or len(images) == 0:
                from ..quality.eval_data import synthetic_images

                images = synthetic_images(config.calibration_samples, image_size=_image_size(source),
                                          seed=1).inputs
                state = state.note("quantize_onnx: no calibration images given; calibrating on synthetic images "
                                   "(seed 1, not the evaluation images)")
            images = images[:config.calibration_samples]
        elif not texts:
            from ..quality.eval_data import builtin_sentences

            texts = builtin_sentences().inputs
            state = state.note("quantize_onnx: no calibration texts given; calibrating on the builtin evaluation "
                               "sentences, so quality measured on them may be optimistic")
        calibration = calibration_feeds(source.path, texts=texts[:config.calibration_samples],
                                        tokenizer=state.tokenizer, images=images)
    path, details = quantize_onnx(source.path, config, smoke_feed=_smoke_feed(source.path, state),
                                  calibration=calibration)
    precision = PRECISION[config.mode]
    size = os.path.getsize(path)
    kept = details.get("kept_float")
    record = ArtifactRecord.of_file(path, "onnx", precision, config.kind, source=source.path.name,
                                    inputs=source.details.get("inputs"), outputs=source.details.get("outputs"),
                                    **details)
    line = (f"quantize_onnx: {config.mode} → {path.name}: {size / 1e6:.1f} MB "
            f"({size / source.size_bytes:.0%} of {source.size_mb:.1f} MB fp32) in {details['seconds']:.1f} s"
            + (f"; kept in float (measured sensitivity, SQNR dB): "
               + ", ".join(f"{n} {db}" for n, db in details["kept_float_sqnr_db"].items())
               + f"; cosine on held-back inputs by MatMuls kept in float: {details['sensitivity_tried']}"
               if config.sensitivity else f"; kept in float: {len(kept)} FFN down-projections" if kept else ""))
    return state.with_artifact(record, line)


def _image_size(source: ArtifactRecord) -> int:
    for sig in source.details.get("inputs") or []:
        if sig.get("name") == "pixel_values" and isinstance(sig["shape"][-1], int):
            return int(sig["shape"][-1])
    return 224
