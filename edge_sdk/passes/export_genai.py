"""export_genai: a decoder LLM → ONNX with a KV cache, through onnxruntime-genai's model builder.

The builder (`python -m onnxruntime_genai.models.builder`) reads a Hugging Face directory (config, weights, tokenizer)
and writes model.onnx (+ .data) with past/present KV-cache inputs and outputs, GroupQueryAttention, int4/int8
weights as block-wise MatMulNBits, plus genai_config.json and the tokenizer files the genai runtime loads. It runs
in a subprocess: it prints progress bars, and it puts its own directory on sys.path.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

from ..errors import InputError, ToolError
from ..schemas.passes import ExportGenaiConfig
from .registry import register
from .state import ArtifactRecord, BuildState

#: HF architectures onnxruntime-genai 0.18's builder turns into decoders (text-only ones; see its builder.py).
GENAI_ARCHITECTURES = frozenset({
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "PhiForCausalLM",
    "Phi3ForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM", "GraniteForCausalLM",
    "OlmoForCausalLM", "NemotronForCausalLM", "SmolLM3ForCausalLM", "InternLM2ForCausalLM", "Ernie4_5ForCausalLM",
})
PRECISION_OF = {"int4": "int4_weight_only", "int8": "int8_dynamic", "fp16": "fp16", "fp32": "fp32"}
BUILDER_TIMEOUT_S = 3600


def genai_version() -> str | None:
    try:
        from importlib import metadata

        return metadata.version("onnxruntime-genai")
    except Exception:  # noqa: BLE001 - not installed
        return None


def check_architecture(architectures: list[str] | None, where: str) -> str:
    """The one architecture the builder will read, or InputError naming the supported ones."""
    arch = (architectures or [None])[0]
    if arch not in GENAI_ARCHITECTURES:
        raise InputError(f"{where}: architecture '{arch}' cannot be built as a decoder (onnxruntime-genai's model "
                         f"builder supports {', '.join(sorted(GENAI_ARCHITECTURES))})")
    return arch


@contextlib.contextmanager
def quiet_hf():
    """transformers quiet, and without its progress bars ("Writing model shards", "Loading weights"), which would
    interleave with the build's progress lines."""
    from transformers.utils import logging as hf_logging

    from ..modelspec.hf_config import quiet_transformers

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with quiet_transformers():
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def run_builder(hf_dir: Path, out_dir: Path, cfg: ExportGenaiConfig, cache_dir: Path) -> str:
    """Run the model builder; its stdout tail, or ToolError with the last lines of its stderr."""
    if genai_version() is None:
        raise ToolError("export_genai needs onnxruntime-genai (pip install onnxruntime-genai)")
    if cfg.precision == "fp16" and cfg.execution_provider == "cpu":
        raise InputError("plan: passes.export_genai: fp16 decoders are built for cuda only (onnxruntime-genai has "
                         "no FP16 CPU model); plan fp32, int8 or int4 for a CPU")
    extra = ["hf_token=false"]
    if cfg.precision in ("int4", "int8"):
        extra.append(f"block_size={cfg.block_size}")
        if cfg.accuracy_level is not None:
            extra.append(f"accuracy_level={cfg.accuracy_level}")
    argv = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir), "-o", str(out_dir),
            "-p", cfg.precision, "-e", cfg.execution_provider, "-c", str(cache_dir), "--extra_options", *extra]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=BUILDER_TIMEOUT_S,
                           env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired:
        raise ToolError(f"onnxruntime-genai's model builder ran over {BUILDER_TIMEOUT_S} s") from None
    if r.returncode != 0 or not (out_dir / "model.onnx").is_file():
        tail = [ln for ln in r.stderr.splitlines() if ln.strip()][-3:]
        raise ToolError(f"onnxruntime-genai's model builder failed (exit {r.returncode}): {' | '.join(tail)[:400]}")
    return r.stdout[-2000:]


def set_context_length(genai_config: Path, context_length: int | None) -> dict:
    """Write the plan's context into genai_config.json (search.max_length, model.context_length)."""
    data = json.loads(genai_config.read_text())
    if context_length is not None:
        data["model"]["context_length"] = int(context_length)
        data["search"]["max_length"] = int(context_length)
    genai_config.write_text(json.dumps(data, indent=4))
    return data


@register(ExportGenaiConfig)
def apply(config: ExportGenaiConfig, state: BuildState) -> BuildState:
    """Save the model and tokenizer as a HF directory, run the builder on it, record model.onnx."""
    model, tok = state.model, state.tokenizer
    check_architecture(getattr(model.config, "architectures", None), "model")
    max_pos = int(getattr(model.config, "max_position_embeddings", 0) or 0)
    if config.context_length and max_pos and config.context_length > max_pos:
        raise InputError(f"plan: passes.export_genai.context_length {config.context_length} is longer than the "
                         f"model's max_position_embeddings {max_pos}; plan a context ≤ {max_pos} (--seq-len)")
    hf = state.work_dir / "hf"
    out = state.work_dir / "genai"
    with quiet_hf():
        model.save_pretrained(str(hf))
        tok.save_pretrained(str(hf))
    run_builder(hf, out, config, state.work_dir / "genai-cache")
    data = set_context_length(out / "genai_config.json", config.context_length)
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    rec = ArtifactRecord.of_file(out / "model.onnx", "onnx", PRECISION_OF[config.precision],  # type: ignore[arg-type]
                                 "export_genai", model_dir=str(out), files=files,
                                 builder=f"onnxruntime-genai {genai_version()}",
                                 context_length=int(data["model"]["context_length"]))
    size = sum((out / f).stat().st_size for f in files if f.startswith("model.onnx")) / 1e6
    block = f", block {config.block_size}" if config.precision in ("int4", "int8") else ""
    return state.with_artifact(rec, f"export_genai: {config.precision}{block} {config.execution_provider} decoder "
                                    f"with KV cache, {size:.2f} MB ({', '.join(files)})")
