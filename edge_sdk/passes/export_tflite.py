"""How does a PyTorch encoder become a verified LiteRT (.tflite) file, in fp32, fp16, dynamic int8 or full int8?

Decisions (measured with torch 2.13, litert-torch 0.10.0, ai-edge-quantizer 0.10.0, ai-edge-litert 2.3.0):

- Converter: litert-torch (no TensorFlow needed). It cannot live in the main environment (it downgrades pydantic
  and typing-extensions and brings torchao, whose load warnings break one-line errors; see scripts/setup-litert),
  so conversion runs in a child process with the python of a `.venv-litert` (found by `litert_python`:
  $EDGE_SDK_LITERT_PYTHON, else ./.venv-litert, else one beside the active venv, else the source checkout's)
  executing `tflite_child.py`.
- Hand-over: this side traces the model with `torch.export` and saves the program (.pt2); the child loads and
  converts it. The program carries the exact traced graph and weights, so the child needs no model code, and
  pruned models (per-layer head counts) need nothing special.
- What the graph computes: the same wrapper as the ONNX export (`arch/outputs.py`), returning a dict so the
  .tflite signature names its outputs: `last_hidden_state` and the pooled L2-normalised `embeddings` (mean over
  the mask for text, CLS for vision), or `logits`. The quality gate thus compares the same vector for both formats.
- Shapes are static: batch 1, `seq_len` tokens (clipped to max_position_embeddings); vision [1, C, H, W].
  litert-torch 0.10.0's `dynamic_shapes` fails on BERT (TypeError in its int64→int32 arange rewrite), and static
  shapes are what NPU/GPU delegates want anyway. Token inputs are int32 (litert-torch narrows int64 anyway):
  input_ids, attention_mask, and token_type_ids only when the model takes them and the tokenizer makes them.
- Quantization through ai-edge-quantizer on the converted float file: dynamic_int8 = recipe dynamic_wi8_afp32
  (MiniLM: 3.8x smaller, cosine 0.998); fp16 = weight-only fp16 (float_casting); full_int8 = recipe static_wi8_ai8
  calibrated on the build's calibration texts/images (refused without them). litert-torch's own PT2E int8 is not
  used: its files fail at run time (EMBEDDING_LOOKUP zero point).
- Verified, not trusted: the finished file runs in ai-edge-litert's Interpreter on fresh inputs (one unpadded, one
  with 40 % padding, so an ignored mask shows) and is compared with PyTorch. fp32 must match within
  max |tflite − torch| <= 1e-4 × max(1, max |torch|) per output, like the ONNX export; quantized files record their
  difference and the embeddings' cosine (judging quality is the quality gate's job) and fail only on NaN/inf.
- Atomic: everything is written in a temporary directory under the work dir; the verified file is renamed into
  place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ..arch.outputs import detect_head, wrap
from ..errors import InputError, ToolError
from ..quality.runners_litert import dequantize, litert_interpreter
from ..schemas.passes import ExportTfliteConfig
from .registry import register
from .state import ArtifactPrecision, ArtifactRecord, BuildState

REL_TOLERANCE = 1e-4
MODEL_FILE = "model.tflite"
LITERT_PYTHON_ENV = "EDGE_SDK_LITERT_PYTHON"
LITERT_VENV_NAME = ".venv-litert"
#: only meaningful in a source checkout (edge_sdk/ sits in the repository root); an installed package has none
SOURCE_CHECKOUT = Path(__file__).resolve().parents[2]
CHILD_SCRIPT = Path(__file__).with_name("tflite_child.py")
CHILD_TIMEOUT_S = 3600
PRECISION: dict[str, ArtifactPrecision] = {"none": "fp32", "fp16": "fp16", "dynamic_int8": "int8_dynamic",
                                           "full_int8": "int8_static"}


class TfliteExportError(ToolError):
    """The model could not be converted faithfully (converter failure, or the .tflite differs from PyTorch)."""


class LiteRtEnvError(ToolError):
    """The isolated LiteRT converter environment is missing or unusable."""


@dataclass
class TfliteExportResult:
    path: Path
    precision: ArtifactPrecision
    inputs: list[dict[str, Any]]            # TensorSig-shaped: name, dtype, shape
    outputs: list[dict[str, Any]]
    max_abs_diff: dict[str, float]          # worst over the checked inputs, per output
    embedding_cosine_min: float | None      # lowest cosine of tflite vs torch embeddings over the checked inputs
    checked_inputs: int
    seq_len: int | None
    recipe: str | None
    versions: dict[str, str]
    float_bytes: int
    seconds: float
    convert_seconds: float
    log: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- the child environment
def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _usable(python: Path) -> bool:
    return python.is_file() and os.access(python, os.X_OK)


def litert_candidates() -> list[Path]:
    """Where a converter environment is looked for when $EDGE_SDK_LITERT_PYTHON is unset, in order: the current
    directory, beside the active venv (sys.prefix's parent: `<project>/.venv` → `<project>/.venv-litert`), and the
    source checkout edge_sdk was imported from."""
    out: list[Path] = []
    for root in (Path.cwd(), Path(sys.prefix).parent, SOURCE_CHECKOUT):
        python = _venv_python(root / LITERT_VENV_NAME)
        if python not in out:
            out.append(python)
    return out


def litert_python() -> Path:
    """The python that runs litert-torch: $EDGE_SDK_LITERT_PYTHON when set (it must exist), else the first
    `.venv-litert` of `litert_candidates()`. The error names every place looked and the fix."""
    override = os.environ.get(LITERT_PYTHON_ENV)
    fix = "create it with scripts/setup-litert (./test and ./demo do it for you)"
    if override:
        python = Path(override)
        if _usable(python):
            return python
        raise LiteRtEnvError(f"export_tflite: the LiteRT converter environment is missing (${LITERT_PYTHON_ENV}="
                             f"{override} is not an executable python); point it at a .venv-litert python, or unset "
                             f"it and {fix}")
    looked = litert_candidates()
    for python in looked:
        if _usable(python):
            return python
    raise LiteRtEnvError(f"export_tflite: the LiteRT converter environment is missing (${LITERT_PYTHON_ENV} is unset; "
                         f"looked for {', '.join(map(str, looked))}); {fix}, or set ${LITERT_PYTHON_ENV} to its "
                         f"python")


def _run_child(job: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    job_path = job_dir / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    log_path = job_dir / "child.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    cmd = [os.fspath(litert_python()), os.fspath(CHILD_SCRIPT), os.fspath(job_path)]
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=job_dir,
                                  timeout=CHILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise TfliteExportError(f"export_tflite: conversion did not finish in {CHILD_TIMEOUT_S} s") from None
    result_path = Path(job["result"])
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else None
    if proc.returncode == 0 and result and result.get("ok"):
        return result
    if result and result.get("error"):
        why = result["error"]
    else:  # died before writing a result (import failure, killed): the end of its output says why
        tail = [line for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        why = f"exit status {proc.returncode}: " + (" | ".join(tail[-3:])[:600] if tail else "no output")
    raise TfliteExportError(f"export_tflite: litert-torch/ai-edge-quantizer failed ({why})")


# ------------------------------------------------------------------------------------------------ the graph
def _named(wrapper, input_names: Sequence[str]):
    """A module whose forward takes the inputs by name and returns a dict: litert-torch names the .tflite
    signature's inputs after the keyword arguments and its outputs after the dict keys."""
    from torch import nn

    names = wrapper.output_names()

    class NamedText(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = wrapper

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return dict(zip(names, self.inner(input_ids, attention_mask, token_type_ids)))

    class NamedVision(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = wrapper

        def forward(self, pixel_values):
            return dict(zip(names, self.inner(pixel_values)))

    return (NamedVision() if list(input_names) == ["pixel_values"] else NamedText()).eval()


def _text_feed(seq: int, vocab: int, names: Sequence[str], seed: int, pad_from: float | None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(1, seq)).astype(np.int32)
    mask = np.ones((1, seq), dtype=np.int32)
    if pad_from is not None and seq > 1:
        cut = max(1, int(seq * pad_from))
        mask[0, cut:] = 0
        ids[0, cut:] = 0
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((1, seq), dtype=np.int32)}
    return {n: feed[n] for n in names}


def _calibration_arrays(config: ExportTfliteConfig, kind: str, names: Sequence[str], seq: int, tokenizer,
                        texts: Sequence[str], images, image_shape: tuple[int, int, int] | None
                        ) -> dict[str, np.ndarray]:
    """(N, ...) arrays per input for full_int8; InputError when the build has no calibration data."""
    if kind == "vision":
        if images is None or len(images) == 0:
            raise InputError("export_tflite: quantize 'full_int8' needs calibration images "
                             "(--calibration-data); use quantize 'dynamic_int8' to quantize without them")
        px = np.asarray(images, dtype=np.float32)[:config.calibration_samples]
        if image_shape is not None and tuple(px.shape[1:]) != image_shape:
            raise InputError(f"export_tflite: calibration images have shape {tuple(px.shape[1:])}, the model takes "
                             f"{image_shape}")
        return {"pixel_values": px}
    if not texts:
        raise InputError("export_tflite: quantize 'full_int8' needs calibration texts (--calibration-data) to "
                         "measure activation ranges; use quantize 'dynamic_int8' to quantize without them")
    if tokenizer is None:
        raise InputError("export_tflite: quantize 'full_int8' of a text model needs its tokenizer")
    enc = tokenizer(list(texts[:config.calibration_samples]), padding="max_length", truncation=True,
                    max_length=seq, return_tensors="np")
    return {n: (np.asarray(enc[n], dtype=np.int32) if n in enc else np.zeros((len(enc["input_ids"]), seq), np.int32))
            for n in names}


# ---------------------------------------------------------------------------------------------- verification
def _torch_input(a: np.ndarray):
    """The PyTorch reference runs on the model's own dtypes: int64 token ids (the .tflite gets int32)."""
    import torch

    t = torch.from_numpy(a)
    return t.long() if a.dtype == np.int32 else t


def _signature_io(interpreter) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sig = interpreter.get_signature_runner()
    ins, outs = sig.get_input_details(), sig.get_output_details()
    def conv(details: dict) -> list[dict[str, Any]]:
        sigs = []
        for name, v in sorted(details.items(), key=lambda kv: kv[1]["index"]):  # graph order, not a-z
            sig = {"name": name, "dtype": v["dtype"].__name__, "shape": [int(x) for x in v["shape"]]}
            scale, zero_point = v.get("quantization", (0.0, 0))
            if scale:  # a quantized tensor (full_int8 outputs): the device needs these to read it
                sig.update(scale=float(scale), zero_point=int(zero_point))
            sigs.append(sig)
        return sigs

    return conv(ins), conv(outs)


def _verify(path: Path, named, feeds: list[dict[str, np.ndarray]], output_names: tuple[str, ...], strict: bool
            ) -> tuple[dict[str, float], float | None]:
    """(max abs diff per output, min cosine of `embeddings`) of the .tflite against PyTorch on `feeds`."""
    import torch

    runner = litert_interpreter(path).get_signature_runner()
    out_details = runner.get_output_details()
    worst = {n: 0.0 for n in output_names}
    scale = {n: 1.0 for n in output_names}
    cos_min: float | None = None
    for feed in feeds:
        with torch.inference_mode():
            ref = named(**{n: _torch_input(a) for n, a in feed.items()})
        got = runner(**feed)
        for name in output_names:
            r, g = ref[name].float().numpy(), dequantize(got[name], out_details[name])
            if r.shape != g.shape:
                raise TfliteExportError(f"export_tflite: output '{name}' has shape {g.shape} in LiteRT but "
                                        f"{r.shape} in PyTorch")
            if not np.all(np.isfinite(g)):
                raise TfliteExportError(f"export_tflite: LiteRT output '{name}' contains NaN or inf")
            worst[name] = max(worst[name], float(np.max(np.abs(r - g))) if r.size else 0.0)
            scale[name] = max(scale[name], float(np.max(np.abs(r))) if r.size else 1.0)
            if name == "embeddings":
                cos = min(1.0, float(np.sum(r * g) / max(np.linalg.norm(r) * np.linalg.norm(g), 1e-12)))
                cos_min = cos if cos_min is None else min(cos_min, cos)
    if strict:
        for name in output_names:
            if not worst[name] <= REL_TOLERANCE * scale[name]:
                raise TfliteExportError(
                    f"export_tflite: LiteRT output '{name}' differs from PyTorch by {worst[name]:.3g} (tolerance "
                    f"{REL_TOLERANCE * scale[name]:.3g} = {REL_TOLERANCE:g} x max |output| {scale[name]:.3g})")
    return worst, cos_min


# ------------------------------------------------------------------------------------------------- export
def export_tflite(model, path: str | os.PathLike[str], *, model_kind: Literal["text", "vision"] = "text",
                  tokenizer=None, config: ExportTfliteConfig | None = None, calibration_texts: Sequence[str] = (),
                  calibration_images=None, progress: Callable[[str], None] | None = None) -> TfliteExportResult:
    """Convert `model` to one verified .tflite file at `path` (see the module docstring for every decision).
    `progress` sees each log line as it happens: conversion takes tens of seconds, so the user sees it start."""
    import torch

    from .export_onnx import uses_token_type_ids

    config = config or ExportTfliteConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log: list[str] = []

    def say(line: str) -> None:
        log.append(line)
        if progress is not None:
            progress(line)

    model = model.eval()
    cfg = getattr(model, "config", None)

    image_shape = None
    seq = None
    if model_kind == "vision":
        channels, size = int(getattr(cfg, "num_channels", 3)), int(getattr(cfg, "image_size", 224))
        image_shape = (channels, size, size)
        input_names = ["pixel_values"]
        make = lambda i: {"pixel_values": np.random.default_rng(i).standard_normal(  # noqa: E731
            (1, *image_shape)).astype(np.float32)}
    else:
        vocab = int(getattr(cfg, "vocab_size", 0) or 0)
        if vocab <= 1:
            raise InputError(f"export_tflite: {type(model).__name__} has no config.vocab_size; cannot make token "
                             f"inputs for a text model")
        max_pos = int(getattr(cfg, "max_position_embeddings", 0) or 0) or config.seq_len
        seq = min(config.seq_len, max_pos)
        if seq < config.seq_len:
            say(f"export_tflite: seq_len {config.seq_len} > max_position_embeddings {max_pos}; using {seq}")
        input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_token_type_ids(model, tokenizer)
                                                         else [])
        make = lambda i: _text_feed(seq, vocab, input_names, seed=i, pad_from=0.6 if i % 2 else None)  # noqa: E731

    calibration = None
    if config.quantize == "full_int8":  # refuse before the slow part
        calibration = _calibration_arrays(config, model_kind, input_names, seq or 0, tokenizer, calibration_texts,
                                          calibration_images, image_shape)

    sample = make(1)  # padded: the traced graph must not depend on the mask's values (it cannot, but be sure)
    probe_args = ({"pixel_values": sample["pixel_values"]} if model_kind == "vision"
                  else {k: sample[k] for k in ("input_ids", "attention_mask")})
    with torch.inference_mode():
        probe = model(**{n: _torch_input(a) for n, a in probe_args.items()})
    try:
        head = detect_head(probe)
    except ValueError as exc:
        raise TfliteExportError(f"export_tflite: {exc}") from None
    wrapper = wrap(model, model_kind, head).eval()
    named = _named(wrapper, input_names)
    output_names = wrapper.output_names()

    job_dir = Path(tempfile.mkdtemp(prefix=".export_tflite-", dir=path.parent))
    try:
        program = job_dir / "model.pt2"
        t0 = time.perf_counter()
        try:
            exported = torch.export.export(named, (), {n: torch.from_numpy(sample[n]) for n in input_names},
                                           strict=False)
            torch.export.save(exported, os.fspath(program))
        except Exception as exc:  # noqa: BLE001 - tracing failures are many and deep; name the model
            raise TfliteExportError(f"export_tflite: torch.export failed for {type(model).__name__}: "
                                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from exc
        np.savez(job_dir / "sample.npz", **{n: sample[n] for n in input_names})
        if calibration is not None:
            np.savez(job_dir / "calibration.npz", **calibration)
        out = job_dir / MODEL_FILE
        job = {"program": os.fspath(program), "sample": os.fspath(job_dir / "sample.npz"), "output": os.fspath(out),
               "quantize": config.quantize, "torch_version": torch.__version__,
               "calibration": os.fspath(job_dir / "calibration.npz") if calibration is not None else None,
               "result": os.fspath(job_dir / "result.json")}
        what = "no quantization" if config.quantize == "none" else f"quantize {config.quantize}"
        say(f"export_tflite: converting {type(model).__name__} ({what}) with litert-torch in "
            f"{litert_python().parent.parent.name} (tens of seconds)")
        t1 = time.perf_counter()
        child = _run_child(job, job_dir)
        child_s = time.perf_counter() - t1
        trace_s = t1 - t0
        if not out.is_file():
            raise TfliteExportError("export_tflite: the converter reported success but wrote no file")

        feeds = [make(i) for i in (2, 3)]  # fresh inputs: one unpadded, one padded
        diffs, cos_min = _verify(out, named, feeds, output_names, strict=config.quantize == "none")
        inputs, outputs = _signature_io(litert_interpreter(out))
        os.replace(out, path)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)

    precision = PRECISION[config.quantize]
    seconds = time.perf_counter() - started
    size = os.path.getsize(path)
    what = (f"quantized with ai-edge-quantizer ({child.get('recipe')}, {child['float_bytes'] / 1e6:.1f} → "
            f"{size / 1e6:.1f} MB, {child['float_bytes'] / size:.1f}x smaller)" if config.quantize != "none"
            else "fp32")
    say(f"export_tflite: litert-torch {child['versions'].get('litert-torch', '?')} converted "
               f"{type(model).__name__} in {child['convert_seconds']:.1f} s, {what}; inputs "
               + ", ".join(f"{i['name']} {i['dtype']}{i['shape']}" for i in inputs))
    say(f"export_tflite: LiteRT vs PyTorch on {len(feeds)} inputs: max abs diff "
               + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
               + (f", embeddings cosine >= {cos_min:.5f}" if cos_min is not None else "")
               + (f" (tolerance {REL_TOLERANCE:g} x max |output|)" if config.quantize == "none" else ""))
    say(f"export_tflite: wrote {path.name} ({size / 1e6:.2f} MB, {precision}) in {seconds:.1f} s "
               f"(torch.export {trace_s:.1f} s, converter process {child_s:.1f} s)")
    return TfliteExportResult(path=path, precision=precision, inputs=inputs, outputs=outputs, max_abs_diff=diffs,
                              embedding_cosine_min=cos_min, checked_inputs=len(feeds), seq_len=seq,
                              recipe=child.get("recipe"), versions=child["versions"],
                              float_bytes=child["float_bytes"], seconds=seconds,
                              convert_seconds=child["convert_seconds"], log=log)


@register(ExportTfliteConfig)
def apply(config: ExportTfliteConfig, state: BuildState) -> BuildState:
    """Convert `state.model` (the possibly pruned student) to `work_dir/model.tflite` at the config's precision."""
    result = export_tflite(state.model, Path(state.work_dir) / MODEL_FILE, model_kind=state.model_kind,
                           tokenizer=state.tokenizer, config=config, calibration_texts=state.calibration_texts,
                           calibration_images=state.calibration_images, progress=state.progress)
    state = state.evolve(log=state.log + tuple(result.log))  # already shown through `progress` as they happened
    details: dict[str, Any] = dict(
        inputs=result.inputs, outputs=result.outputs, max_abs_diff=result.max_abs_diff,
        embedding_cosine_min=result.embedding_cosine_min, checked_inputs=result.checked_inputs,
        tolerance_rel=REL_TOLERANCE if config.quantize == "none" else None, seq_len=result.seq_len,
        quantize=config.quantize, recipe=result.recipe, float_bytes=result.float_bytes, tools=result.versions,
        convert_seconds=result.convert_seconds, seconds=round(result.seconds, 2))
    return state.with_artifact(ArtifactRecord.of_file(result.path, "tflite", result.precision, config.kind, **details))
