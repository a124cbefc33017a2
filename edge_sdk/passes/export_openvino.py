"""How does a PyTorch encoder become a verified OpenVINO IR, and how is it compressed with NNCF?

Decisions (openvino 2026.4, nncf 3.4, measured on this project's 2-vCPU machines; `benchmarks/peer_comparison.py`):

- Conversion: `openvino.convert_model(module, example_input=...)` straight from PyTorch, on the same output wrapper
  the ONNX export uses (`arch/outputs.py`: token vectors + mean-pooled, L2-normalised embedding, or logits), so
  a bundle's outputs do not depend on its runtime. Converting from PyTorch rather than from our ONNX keeps
  OpenVINO's own SDPA/attention patterns, which its CPU plugin runs fused. Batch and sequence axes are dynamic.
- Saved with `compress_to_fp16=False`: `save_model`'s default halves fp32 weights to fp16 on disk, which is a
  precision change the plan did not ask for.
- int8: `nncf.quantize(model_type=TRANSFORMER)` — SmoothQuant, then FakeQuantize on MatMul inputs, with the ops
  NNCF knows to be sensitive in transformers (softmax, LayerNorm, GELU inputs) left in float — wrapped in
  `nncf.quantize_with_accuracy_control`: if the embedding cosine on held-back calibration inputs drops more than
  `max_drop`, NNCF ranks the quantized ops by how much each costs and returns them to float one by one until it
  does not. The sensitive set is thus measured per model, not a fixed list. On MiniLM the first try is already
  within 0.005 (cosine 0.997), so nothing is reverted and accuracy control costs one validation pass.
- Weight compression (`int8_weights`, `int4_weights`): `nncf.compress_weights`; activations stay float and the
  CPU plugin quantizes them per token group at run time (its dynamic quantization).
- Verified, not trusted: the fp32 IR is compiled and run on two input shapes different from the conversion sample
  (one with padding) and compared with PyTorch, tolerance 1e-4 × max |output| as for ONNX. The compiled model
  uses INFERENCE_PRECISION_HINT f32: on AMX CPUs the plugin would pick bf16 by itself.
- Atomic: written under a temporary name and renamed (the .bin first, then the .xml that names it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..arch.outputs import detect_head, wrap
from ..errors import InputError, ToolError
from ..quality.runners import tokenize
from ..quality.runners_openvino import compile_openvino
from ..quiet import quiet
from ..schemas.passes import ExportOnnxConfig, ExportOpenvinoConfig
from .export_onnx import REL_TOLERANCE, _shapes, input_maker
from .registry import register
from .state import ArtifactRecord, BuildState

MODEL_FILE = "model.xml"
PRECISION = {"none": "fp32", "int8": "int8_static", "int8_weights": "int8_dynamic", "int4_weights": "int4_weight_only"}
HINT_PRECISION = {"bf16": "bf16", "f16": "fp16"}  # an unquantized IR compiled at a lower precision


@contextlib.contextmanager
def nncf_output():
    """NNCF draws its progress bars on stdout; send them to stderr, so `--json` stdout stays one JSON document."""
    with contextlib.redirect_stdout(sys.stderr), quiet():
        yield


class OpenvinoExportError(ToolError):
    """OpenVINO could not convert the model faithfully (converter failure, or its outputs differ from PyTorch)."""


def _openvino():
    try:
        import openvino as ov
    except ImportError as exc:  # an optional runtime; say how to get it
        raise ToolError(f"export_openvino needs the openvino package ({exc}); install it with "
                        f"'pip install \"openvino>=2026.0\" \"nncf>=3.0\"'") from None
    return ov


def _signature(ov_model) -> tuple[list[dict], list[dict]]:
    def sig(port) -> dict:
        dims = [int(d.get_length()) if d.is_static else ("batch" if i == 0 else "sequence")
                for i, d in enumerate(port.get_partial_shape())]
        return {"name": port.get_any_name(), "dtype": port.get_element_type().to_dtype().name, "shape": dims}

    return [sig(p) for p in ov_model.inputs], [sig(p) for p in ov_model.outputs]


def convert(model, model_kind: str, tokenizer=None):
    """(ov.Model with named inputs/outputs, the torch wrapper, input names, verification feeds)."""
    import torch

    ov = _openvino()
    model = model.eval()
    sample_shape, check_shapes = _shapes(model, model_kind, ExportOnnxConfig())
    make, names = input_maker(model, model_kind, tokenizer, "export_openvino")
    sample = make(*sample_shape, 0)
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    with torch.inference_mode():
        head = detect_head(model(**dict(zip(names, args))))
    wrapper = wrap(model, model_kind, head).eval()
    dyn = [-1] if model_kind == "vision" else [-1, -1]
    # by position: the wrapper's own argument names are not the model's input names (renamed below)
    spec = [(ov.PartialShape(dyn + list(sample[n].shape[len(dyn):])),
             ov.Type.f32 if model_kind == "vision" else ov.Type.i64) for n in names]
    try:
        with quiet(), torch.no_grad():
            ov_model = ov.convert_model(wrapper, example_input=args, input=spec)
    except Exception as exc:  # noqa: BLE001 - converter failures are many and deep; name the model
        raise OpenvinoExportError(f"export_openvino: openvino.convert_model failed for {type(model).__name__}: "
                                  f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from exc
    for port, name in zip(ov_model.inputs, names):
        port.get_tensor().set_names({name})
    for port, name in zip(ov_model.outputs, wrapper.output_names()):
        port.get_tensor().set_names({name})
    feeds = [make(b, s, i + 1) for i, (b, s) in enumerate(check_shapes)]
    return ov_model, wrapper, names, feeds


def _verify(xml: Path, wrapper, names: list[str], feeds: list[dict]) -> dict[str, float]:
    import torch

    compiled = compile_openvino(xml)
    outs = wrapper.output_names()
    worst = {n: 0.0 for n in outs}
    scale = {n: 1.0 for n in outs}
    for feed in feeds:
        with torch.inference_mode():
            ref = wrapper(*[torch.from_numpy(feed[n]) for n in names])
        got = compiled({n: feed[n] for n in names})
        for i, (name, r) in enumerate(zip(outs, ref)):
            r, g = r.numpy(), np.asarray(got[compiled.outputs[i]])
            if r.shape != g.shape:
                raise OpenvinoExportError(f"export_openvino: output '{name}' has shape {g.shape} in OpenVINO but "
                                          f"{r.shape} in PyTorch")
            worst[name] = max(worst[name], float(np.max(np.abs(r - g))) if r.size else 0.0)
            scale[name] = max(scale[name], float(np.max(np.abs(r))) if r.size else 1.0)
    for name in outs:
        if not worst[name] <= REL_TOLERANCE * scale[name]:
            raise OpenvinoExportError(f"export_openvino: OpenVINO output '{name}' differs from PyTorch by "
                                      f"{worst[name]:.3g} (tolerance {REL_TOLERANCE * scale[name]:.3g})")
    return worst


def calibration_items(kind: str, names: Sequence[str], tokenizer, texts: Sequence[str], images) -> list[dict]:
    """One feed per calibration input at its natural length (batch 1), as the device will see them."""
    if kind == "vision":
        if images is None or not len(images):
            raise InputError("export_openvino: int8 of a vision model needs calibration images")
        return [{names[0]: np.ascontiguousarray(images[i:i + 1], dtype=np.float32)} for i in range(len(images))]
    if not texts:
        raise InputError("export_openvino: int8 of a text model needs calibration texts (--calibration-data)")
    if tokenizer is None:
        raise InputError("export_openvino: int8 of a text model needs the tokenizer to make calibration inputs")
    out = []
    for t in texts:
        enc = tokenize(tokenizer, [t], max_length=128)
        out.append({n: enc[n] if n in enc else np.zeros_like(enc["input_ids"]) for n in names})
    return out


def _cosine_validation(output_index: int):
    """validation_fn for accuracy control: mean cosine of the candidate's output to the fp32 model's."""

    def validate(compiled, data) -> tuple[float, list[float]]:
        per = []
        for feed, ref in data:
            got = np.asarray(compiled(feed)[compiled.outputs[output_index]]).reshape(-1)
            r = ref.reshape(-1)
            per.append(float(got @ r / (np.linalg.norm(got) * np.linalg.norm(r) + 1e-12)))
        return float(np.mean(per)), per

    return validate


def compress(ov_model, config: ExportOpenvinoConfig, items: list[dict], log: list[str]):
    """Apply the config's NNCF compression to `ov_model`; returns the compressed model."""
    import nncf

    if config.quantize in ("int8_weights", "int4_weights"):
        mode = nncf.CompressWeightsMode.INT8_ASYM if config.quantize == "int8_weights" \
            else nncf.CompressWeightsMode.INT4_SYM
        kw = {} if config.quantize == "int8_weights" else {"group_size": config.group_size, "ratio": 1.0,
                                                            "all_layers": True}
        log.append(f"export_openvino: nncf.compress_weights {mode.value} {kw or ''}".rstrip())
        return nncf.compress_weights(ov_model, mode=mode, **kw)
    calib = items[:config.calibration_samples]
    common = dict(model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calib))
    if not config.accuracy_control:
        log.append(f"export_openvino: nncf.quantize int8 (transformer), {len(calib)} calibration inputs")
        return nncf.quantize(ov_model, nncf.Dataset(calib), **common)
    held = items[config.calibration_samples:config.calibration_samples + config.validation_samples]
    if len(held) < 8:  # too few inputs to hold back: validate on the calibration inputs themselves, and say so
        held = calib[:config.validation_samples]
        log.append("export_openvino: fewer than 8 calibration inputs left to hold back; accuracy control validates "
                   "on calibration inputs")
    ref_model = compile_openvino_model(ov_model)
    out_index = len(ov_model.outputs) - 1  # embeddings / logits: what the quality gate compares
    pairs = [(f, np.asarray(ref_model(f)[ref_model.outputs[out_index]])) for f in held]
    quantized = nncf.quantize_with_accuracy_control(
        ov_model, nncf.Dataset(calib), nncf.Dataset(pairs, lambda p: p[0]),
        _cosine_validation(out_index), max_drop=config.max_drop, drop_type=nncf.DropType.ABSOLUTE,
        **common)
    log.append(f"export_openvino: nncf.quantize_with_accuracy_control int8 (transformer), {len(calib)} calibration "
               f"inputs, {len(pairs)} held-back inputs, max cosine drop {config.max_drop}")
    return quantized


def compile_openvino_model(ov_model, threads: int = 2):
    """Compile an in-memory ov.Model on the CPU with f32 inference precision (the reference for accuracy control)."""
    ov = _openvino()
    return ov.Core().compile_model(ov_model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                                    "INFERENCE_PRECISION_HINT": "f32"})


def save(ov_model, path: Path, fp16_weights: bool = False) -> None:
    """model.xml + model.bin, atomically (the .bin lands first; the .xml that names it last)."""
    ov = _openvino()
    tmp = path.with_name(f".{path.stem}.partial.xml")
    ov.save_model(ov_model, os.fspath(tmp), compress_to_fp16=fp16_weights)
    os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
    # the .xml does not name its .bin (OpenVINO pairs them by stem), so renaming both keeps them paired
    os.replace(tmp, path)


@register(ExportOpenvinoConfig)
def apply(config: ExportOpenvinoConfig, state: BuildState) -> BuildState:
    """Convert `state.model` to `work_dir/model.xml` (+ .bin), verified; then compress it as configured."""
    started = time.perf_counter()
    log: list[str] = []
    ov_model, wrapper, names, feeds = convert(state.model, state.model_kind, state.tokenizer)
    xml = Path(state.work_dir) / MODEL_FILE
    fp32_xml = Path(state.work_dir) / "fp32" / MODEL_FILE
    fp32_xml.parent.mkdir(exist_ok=True)
    save(ov_model, fp32_xml)
    diffs = _verify(fp32_xml, wrapper, names, feeds)
    log.append(f"export_openvino: openvino.convert_model, inputs {names}; OpenVINO vs PyTorch max abs diff "
               + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    if config.quantize == "none" and config.inference_precision == "f16":
        save(ov_model, xml, fp16_weights=True)  # a GPU/NPU plan: fp16 weights on disk, computed in fp16
    elif config.quantize == "none":
        os.replace(fp32_xml.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(fp32_xml, xml)
    else:
        items = calibration_items(state.model_kind, names, state.tokenizer, state.calibration_texts,
                                  state.calibration_images) if config.quantize == "int8" else []
        with nncf_output():
            compressed = compress(ov_model, config, items, log)
        save(compressed, xml)
    ins, outs = _signature(ov_model)
    size = os.path.getsize(xml) + os.path.getsize(xml.with_suffix(".bin"))
    seconds = time.perf_counter() - started
    log.append(f"export_openvino: wrote {xml.name} + {xml.with_suffix('.bin').name} ({size / 1e6:.1f} MB, "
               f"{config.quantize}) in {seconds:.1f} s")
    for line in log:
        state = state.note(line)
    precision = HINT_PRECISION.get(config.inference_precision, "fp32") if config.quantize == "none" \
        else PRECISION[config.quantize]
    record = ArtifactRecord(xml, "openvino", precision, size, config.kind,  # type: ignore[arg-type]
                            dict(inputs=ins, outputs=outs, max_abs_diff=diffs, tolerance_rel=REL_TOLERANCE,
                                 inference_precision=config.inference_precision, seconds=round(seconds, 2),
                                 static_shape=config.static_shape))
    return state.with_artifact(record)
