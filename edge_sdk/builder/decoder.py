"""`build` for decoder LLMs: Plan(s) with an export_genai pass → an ONNX decoder with KV cache, its next-token
quality measured against the uncompressed PyTorch model → a verifiable Bundle that generates on the device.

Like the encoder build (pipeline.py), it runs the plans it is given in order until one passes the quality gate
(next-token top-1 agreement >= 1 - max_quality_drop; see quality/decoder.py) and writes nothing until then.
Sources: a Hugging Face directory with weights AND a tokenizer (tokenizer.json), or a config.json alone, which gets
random weights (seed 0) and a byte-level BPE tokenizer trained on edge-sdk's own corpora, sized to the vocabulary.
The bundle keeps the builder's directory as `model/` (model.onnx + .data, genai_config.json, tokenizer files), so
onnxruntime-genai can open it as is; the artifact's `decoder` field says it is a decoder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError, QualityGateError
from ..schemas.bundle import Artifact, Attempt, Bundle, DecoderArtifact, TensorSig
from ..schemas.modelspec import ModelSpec
from ..schemas.plan import Plan, bench_prompt_tokens

Progress = Callable[[str], None]
DECODER_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
EVAL_MAX_TOKENS = 128   # tokens per evaluation text


@dataclass
class LoadedDecoder:
    model: Any          # a transformers *ForCausalLM, fp32, eval mode
    tokenizer: Any      # a transformers fast tokenizer (tokenizer.json)
    name: str
    random_weights: bool
    max_positions: int


def bpe_tokenizer(vocab_size: int, texts: list[str]):
    """A byte-level BPE tokenizer (the kind onnxruntime-genai's tokenizer reads) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(DECODER_SPECIALS):
        raise InputError(f"config field 'vocab_size' is {vocab_size}; a byte-level tokenizer needs ≥ "
                         f"{256 + len(DECODER_SPECIALS)}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=DECODER_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


def _architecture(cfg) -> str | None:
    if getattr(cfg, "architectures", None):
        return cfg.architectures[0]
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(getattr(cfg, "model_type", ""))


def load_decoder(model: str, corpus: list[str], *, seed: int = 0) -> LoadedDecoder:
    """The PyTorch decoder and its tokenizer; InputError for what cannot become a genai decoder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..modelspec.hf_config import load_config
    from ..modelspec.sources import require_weights, resolve_source
    from ..passes.export_genai import check_architecture, quiet_hf

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    src = resolve_source(model)
    if src.kind == "onnx":
        raise InputError(f"{src.path}: an ONNX file cannot be rebuilt as a decoder; give the Hugging Face directory "
                         f"or its config.json")
    cfg = load_config(src.config_path)
    arch = check_architecture([_architecture(cfg)], str(src.config_path))
    cfg.architectures = [arch]
    max_pos = int(getattr(cfg, "max_position_embeddings", 0) or 0)
    if src.kind in ("builtin", "hf_dir"):
        require_weights(src.path)
        if not (Path(src.path) / "tokenizer.json").is_file():
            raise InputError(f"{src.path}: no tokenizer.json; a decoder bundle carries its tokenizer for generation "
                             f"on the device (save it beside the weights: tokenizer.save_pretrained(dir))")
        try:
            with quiet_hf():
                tok = AutoTokenizer.from_pretrained(str(src.path), local_files_only=True)
                m = AutoModelForCausalLM.from_pretrained(str(src.path), local_files_only=True,
                                                         torch_dtype=torch.float32)
        except Exception as exc:  # corrupt or mismatched files
            raise InputError(f"{src.path}: cannot load the decoder: {' '.join(str(exc).split())[:300]}") from None
        return LoadedDecoder(m.eval(), tok, src.name, False, max_pos)
    tok = bpe_tokenizer(int(cfg.vocab_size), corpus)
    for field, token in (("bos_token_id", "<s>"), ("eos_token_id", "</s>"), ("pad_token_id", "<pad>")):
        if getattr(cfg, field, None) is None:
            setattr(cfg, field, tok.convert_tokens_to_ids(token))
    torch.manual_seed(seed)
    with quiet_hf():
        m = AutoModelForCausalLM.from_config(cfg)
    return LoadedDecoder(m.eval(), tok, src.name, True, max_pos)


def _context(plan: Plan) -> int:
    cfg = plan.pass_of("export_genai")
    return int(cfg.context_length or plan.seq_len)


def prompt_tokens(plan: Plan, context: int) -> int:
    """The benchmark prompt's length (sample_inputs.npz: prompt/input_ids): the one the plan predicts its TTFT for,
    so `bench` measures what was predicted; plans without a generation prediction get the same rule."""
    g = plan.predicted.generation
    return g.prompt_tokens if g is not None else bench_prompt_tokens(context)


def _genai_plans(candidates: list[Plan]) -> list[Plan]:
    plans = [p for p in candidates if p.pass_of("export_genai") is not None]
    if not plans:
        raise InputError(f"plan: {candidates[0].summary()} has no export_genai pass; decoder LLMs are built with "
                         f"onnxruntime-genai: plan them for onnxruntime (edge-sdk plan --runtime onnxruntime)")
    for p in plans:
        if not p.layout.is_single:
            raise InputError(f"plan: layout {p.layout.describe()} is a multi-device layout; run it with "
                             f"`edge-sdk run-parallel`, or plan for one device")
        if prompt_tokens(p, _context(p)) >= _context(p):
            raise InputError(f"plan: predicted.generation.prompt_tokens {prompt_tokens(p, _context(p))} leaves no "
                             f"room to generate in the context of {_context(p)} tokens; make it shorter than the "
                             f"context")
    return plans


def build_decoder(candidates: list[Plan], out: Path, spec: ModelSpec, opts, say: Progress, t0: float) -> Bundle:
    """Run the decoder plans in order until one passes the next-token gate; write its bundle."""
    from ..data.calibration import load_calibration_texts
    from ..passes.registry import apply_pass
    from ..passes.state import BuildState
    from ..quality import default_eval_data, load_eval_data
    from ..quality.decoder import next_token_quality, onnx_logits_fn, token_rows, torch_logits_fn

    plans = _genai_plans(candidates)
    budget = opts.max_quality_drop
    ev = (load_eval_data(opts.eval_data, opts.eval_samples, kind="text") if opts.eval_data
          else default_eval_data("text", opts.eval_samples))
    model = plans[0].model
    say(f"loading {model}")
    corpus = load_calibration_texts(opts.calibration_data, limit=opts.calibration_samples) + list(ev.inputs)
    loaded = load_decoder(model, corpus)
    for p in plans:
        if loaded.max_positions and _context(p) > loaded.max_positions:
            raise InputError(f"plan: context {_context(p)} tokens is longer than {loaded.name}'s "
                             f"max_position_embeddings {loaded.max_positions}; plan a context ≤ "
                             f"{loaded.max_positions} (edge-sdk plan --seq-len)")
    if loaded.random_weights:
        say(f"{loaded.name}: built from its config with random weights (seed 0) and a BPE tokenizer trained on "
            f"edge-sdk's corpora; quality is measured against the same random model")
    rows = token_rows(loaded.tokenizer, list(ev.inputs), min(EVAL_MAX_TOKENS, _context(plans[0])))
    if not rows:
        raise InputError(f"{ev.name}: no text of ≥ 2 tokens to measure next-token quality on")
    reference = torch_logits_fn(loaded.model)
    attempts: list[Attempt] = []
    work_root = Path(tempfile.mkdtemp(prefix="edge-sdk-build-"))
    try:
        for i, cand in enumerate(plans, 1):
            say(f"plan {i}/{len(plans)}: {cand.summary()}")
            work = work_root / f"plan{i}"
            work.mkdir()
            state = BuildState(model=loaded.model, teacher=loaded.model, tokenizer=loaded.tokenizer, work_dir=work,
                               model_kind="text", progress=say)
            for cfg in cand.passes:
                say(f"  pass {cfg.kind}")
                state = apply_pass(cfg, state)
            rec = state.latest("onnx")
            say(f"  measuring next-token quality of {rec.path.name} on {ev.name} ({len(rows)} texts)")
            report = next_token_quality(reference, onnx_logits_fn(rec.path), rows, eval_name=ev.name,
                                        max_quality_drop=budget)
            detail = ", ".join(f"{m.name} {m.value:.4f}" for m in report.metrics)
            if report.failed:
                detail += f" (below the budget: {'; '.join(report.failed)})"
            attempts.append(Attempt(plan=cand.summary(), passed=report.passed, cosine=None, detail=detail))
            if not report.passed:
                say(f"  quality gate: {'; '.join(report.failed)} (budget {budget}): trying the next plan")
                continue
            say(f"  quality gate passed: {detail}")
            return _write(out, cand, rec, state, loaded, spec, report, ev, attempts, opts.archive, t0)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    tried = "; ".join(f"[{a.plan}] {a.detail.partition('(below the budget: ')[2].rstrip(')')}" for a in attempts)
    raise QualityGateError(f"no decoder plan met --max-quality-drop {budget} (next-token top-1 agreement ≥ "
                           f"{1 - budget:.3f}) on {ev.name}: {tried}; raise --max-quality-drop or plan a higher "
                           f"precision")


def _prompt(tokenizer, texts: list[str], n: int) -> np.ndarray:
    ids: list[int] = []
    for t in texts:
        ids += list(tokenizer(t, add_special_tokens=False)["input_ids"])
        if len(ids) >= n:
            break
    ids = (ids * (n // max(len(ids), 1) + 1))[:n] if ids else [0] * n
    return np.asarray([ids], dtype=np.int64)


def _signature(path: Path) -> tuple[list[TensorSig], list[TensorSig]]:
    from ..passes.export_onnx import onnx_signature

    ins, outs = onnx_signature(path)
    conv = lambda xs: [TensorSig(name=x["name"], dtype=str(x["dtype"]), shape=list(x["shape"])) for x in xs]  # noqa
    return conv(ins), conv(outs)


def _write(out: Path, plan: Plan, rec, state, loaded: LoadedDecoder, spec: ModelSpec, report, ev,
           attempts: list[Attempt], archive: bool, t0: float) -> Bundle:
    import json

    from ..bundle import pack_archive, write_bundle
    from ..versions import tool_versions

    say = state.progress or (lambda s: None)
    model_dir = Path(rec.details["model_dir"])
    files = {f"model/{name}": model_dir / name for name in rec.details["files"]}
    genai = json.loads((model_dir / "genai_config.json").read_text())
    dec = genai["model"]["decoder"]
    eos = genai["model"].get("eos_token_id")
    staging = Path(tempfile.mkdtemp(prefix="edge-sdk-stage-"))
    try:
        ctx = int(genai["model"]["context_length"])
        prompt = _prompt(loaded.tokenizer, list(ev.inputs), prompt_tokens(plan, ctx))
        np.savez(staging / "sample_inputs.npz", **{"prompt/input_ids": prompt})
        files["sample_inputs.npz"] = staging / "sample_inputs.npz"
        ins, outs = _signature(rec.path)
        decoder = DecoderArtifact(genai_config="model/genai_config.json", tokenizer="model/tokenizer.json",
                                  context_length=ctx, num_layers=int(dec["num_hidden_layers"]),
                                  num_kv_heads=int(dec["num_key_value_heads"]), head_size=int(dec["head_size"]),
                                  eos_token_id=[int(x) for x in (eos if isinstance(eos, list) else [eos])
                                                if x is not None],
                                  builder=rec.details["builder"])
        artifact = Artifact(path="model/model.onnx", format="onnx", runtime="onnxruntime-genai",
                            provider=plan.runtime.provider, precision=plan.precision, inputs=ins, outputs=outs,
                            decoder=decoder)
        versions = tool_versions()
        versions.setdefault("onnxruntime-genai", rec.details["builder"].split()[-1])
        log = list(state.log) + [f"attempt: {a.plan}: {'passed' if a.passed else 'rejected'} ({a.detail})"
                                 for a in attempts]
        log.append("quality gate (decoder): next-token top-1 agreement with the uncompressed PyTorch model ≥ "
                   f"1 - max_quality_drop ({1 - (report.max_quality_drop or 0):.3f}); perplexity delta reported")
        manifest = write_bundle(out, files, dict(
            model_id=plan.model, model_name=spec.name, device=plan.device,
            plan=plan.model_copy(update={"model_spec": spec}), artifacts=[artifact],
            preprocessing={"tokenizer": "model/tokenizer.json"}, sample_inputs="sample_inputs.npz",
            versions=versions, quality=report, build_log=log))
        say(f"bundle written: {out}")
        arc = pack_archive(out, out.with_name(out.name + ".edgepkg")) if archive else None
        if arc:
            say(f"archive written: {arc}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle(path=out, archive=arc, manifest=manifest, attempts=attempts,
                  seconds=round(time.perf_counter() - t0, 2))
