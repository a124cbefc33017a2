"""`build`: Plan(s) → a real, compressed model, its quality measured against the uncompressed one → a verifiable Bundle.

The build runs plans, it never makes them: it takes one Plan, or a PlanSet / list of plans to try in order (the
planner's ranking). A plan whose measured quality misses `max_quality_drop` is reported and the next one is tried; if
none passes, the build fails with every measurement (QualityGateError, exit 4). The model source and ModelSpec come
from the plan itself. The measured quality, the plan actually built and a log of every attempt go into the bundle's
manifest. Nothing is written to `out_dir` until a plan has passed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from pydantic import Field

from ..bundle import check_bundle_output, pack_archive, write_bundle
from ..errors import InputError, QualityGateError
from ..planner.search import DEFAULT_MAX_QUALITY_DROP
from ..schemas.base import Strict
from ..schemas.bundle import Artifact, Attempt, Bundle, QualityReport, TensorSig
from ..schemas.modelspec import ModelSpec
from ..schemas.plan import Plan, PlanSet
from ..versions import tool_versions

SAMPLE_ROWS = 16
#: Artifact formats a build writes ("engine": TensorRT compiles our ONNX on the device), and who runs each.
BUILT_FORMATS = ("onnx", "tflite", "openvino", "engine")
RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "litert", "openvino": "openvino"}

Progress = Callable[[str], None]


class BuildOptions(Strict):
    """How a build measures and recovers; what it builds is the plan's business."""

    max_quality_drop: float = Field(DEFAULT_MAX_QUALITY_DROP, ge=0, lt=1,
                                    description="max measured mean-cosine drop vs the uncompressed model")
    eval_data: str | list[str] | None = Field(None, description="evaluation inputs: a text file (one per line); for "
                                                                "vision models images, a directory or .npy/.npz")
    task_data: str | None = Field(None, description="labelled task data (.npz inputs+labels; .tsv/.jsonl for text): "
                                                    "adds task accuracy to the quality gate")
    eval_samples: int | None = Field(None, ge=1)
    calibration_data: str | None = Field(None, description="unlabeled text (vision: images) for calibration and "
                                                           "recovery")
    calibration_samples: int = Field(2000, ge=1)
    distill_steps: int | None = Field(None, ge=0, description="recovery budget in steps (overrides the plan's)")
    distill_seconds: float | None = Field(None, gt=0, description="recovery budget in seconds")
    archive: bool = Field(True, description="also write BUNDLE.edgepkg")


def _check_plan_fits(plan: Plan, spec: ModelSpec) -> None:
    """A plan made for another model, or one that prunes more than exists, is refused before any work."""
    t = spec.transformer
    prune = plan.pass_of("structured_prune")
    if prune is not None and t is not None:
        left = t.num_heads - round(t.num_heads * prune.head_ratio)
        if left < 1:
            raise InputError(f"plan: passes.structured_prune.head_ratio {prune.head_ratio} removes all "
                             f"{t.num_heads} heads of {spec.name}; expected < 1 head removed per head")
        if prune.drop_layers >= t.num_layers:
            raise InputError(f"plan: passes.structured_prune.drop_layers {prune.drop_layers} >= the {t.num_layers} "
                             f"layers of {spec.name}")
    if plan.runtime.format not in BUILT_FORMATS:
        raise InputError(f"plan: runtime.format '{plan.runtime.format}' cannot be built (expected one of "
                         f"{', '.join(BUILT_FORMATS)}); plan for a runtime edge-sdk builds (edge-sdk plan --runtime)")
    if not plan.layout.is_single:
        raise InputError(f"plan: layout {plan.layout.describe()} is a multi-device layout; run it with "
                         f"`edge-sdk run-parallel`, or plan for one device")


def _with_budget(plan: Plan, distill_steps: int | None, distill_seconds: float | None) -> Plan:
    d = plan.pass_of("distill")
    if d is None or (distill_steps is None and distill_seconds is None):
        return plan
    upd = {}
    if distill_steps is not None:
        upd["max_steps"] = distill_steps
    if distill_seconds is not None:
        upd["max_seconds"] = distill_seconds
    new_d = d.model_copy(update=upd)
    return plan.model_copy(update={"passes": [new_d if p is d else p for p in plan.passes]})


def _primary(state, plan: Plan):
    fmt = plan.runtime.format if plan.runtime.format in ("tflite", "openvino") else "onnx"
    rec = state.latest(fmt)
    if rec is None:
        raise InputError(f"plan: no {fmt} artifact was produced; the passes {[p.kind for p in plan.passes]} need an "
                         f"export_{fmt} pass")
    return rec


def _embed_fn(rec, loaded, max_length: int):
    if rec.format == "onnx":
        from ..quality import onnx_embed_fn

        return onnx_embed_fn(rec.path, loaded.tokenizer, max_length=max_length)
    if rec.format == "openvino":
        from ..quality.runners_openvino import openvino_embed_fn

        return openvino_embed_fn(rec.path, loaded.tokenizer, max_length=max_length,
                                 precision_hint=rec.details.get("inference_precision", "f32"))
    from ..quality.runners_litert import tflite_embed_fn  # written with the LiteRT pass

    return tflite_embed_fn(rec.path, loaded.tokenizer)


def _signature(rec) -> tuple[list[TensorSig], list[TensorSig]]:
    ins = rec.details.get("inputs") or []
    outs = rec.details.get("outputs") or []
    conv = lambda xs: [TensorSig(name=x["name"], dtype=str(x["dtype"]), shape=list(x["shape"])) for x in xs]  # noqa
    if ins:
        return conv(ins), conv(outs)
    if rec.format == "onnx":
        from ..passes.export_onnx import onnx_signature

        i, o = onnx_signature(rec.path)
        return conv(i), conv(o)
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(rec.path))
    sig = lambda ds: [TensorSig(name=d["name"], dtype=str(d["dtype"].__name__), shape=[int(x) for x in d["shape"]])  # noqa
                      for d in ds]
    return sig(it.get_input_details()), sig(it.get_output_details())


def _sample_inputs(loaded, eval_inputs, seq_len: int, dest: Path) -> Path:
    """Ready-to-run inputs for the on-device benchmark: real sentence lengths and padded to the plan's seq_len."""
    import numpy as np

    from ..benchmark.inputs import save_sample_inputs

    if loaded.kind == "vision":
        arr = np.asarray(eval_inputs[:4], dtype=np.float32)
        return save_sample_inputs(dest, {"real/pixel_values": arr, "padded/pixel_values": arr})
    texts = list(eval_inputs[:SAMPLE_ROWS])
    tok = loaded.tokenizer
    real = tok(texts, padding=True, truncation=True, max_length=seq_len, return_tensors="np")
    padded = tok(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    arrays = {f"real/{k}": np.asarray(v, dtype=np.int64) for k, v in real.items()}
    arrays.update({f"padded/{k}": np.asarray(v, dtype=np.int64) for k, v in padded.items()})
    return save_sample_inputs(dest, arrays)


def _candidates(plans: Plan | PlanSet | Sequence[Plan]) -> list[Plan]:
    if isinstance(plans, PlanSet):
        out = plans.runnable()
    elif isinstance(plans, Plan):
        out = [plans]
    else:
        out = list(plans)
    if not out:
        raise InputError("build: no plan to build (expected a Plan, a PlanSet or a non-empty list of plans)")
    first = out[0]
    for p in out[1:]:
        if (p.model, p.model_name) != (first.model, first.model_name):
            raise InputError(f"build: the plans are for different models ({first.model_name} from '{first.model}' "
                             f"and {p.model_name} from '{p.model}'); a build tries plans for one model")
    return out


def _spec_of(plan: Plan, say: Progress) -> ModelSpec:
    """The plan's own ModelSpec; a plan file written before plans carried one is inspected once, and says so."""
    if plan.model_spec is not None:
        return plan.model_spec
    from ..modelspec import inspect_model

    say(f"the plan carries no ModelSpec (written by an older edge-sdk): inspecting {plan.model}")
    spec = inspect_model(plan.model, batch=plan.batch, seq_len=plan.seq_len)
    if spec.name != plan.model_name:
        raise InputError(f"plan: made for model '{plan.model_name}', but its model source '{plan.model}' is "
                         f"'{spec.name}'")
    return spec


def build(plans: Plan | PlanSet | Sequence[Plan], out_dir: str | Path = "out/bundle", *,
          options: BuildOptions | None = None, progress: Progress | None = None) -> Bundle:
    """Run each plan in turn (compress, export, measure) until one passes the quality gate; bundle it."""
    from ..passes.registry import apply_pass
    from ..passes.state import BuildState
    from ..quality import default_eval_data, evaluate, image_format, load_eval_data, load_task_data, torch_embed_fn
    from .sources import load_for_build

    t0 = time.perf_counter()
    say = progress or (lambda s: None)
    opts = options or BuildOptions()
    budget = opts.max_quality_drop
    candidates = _candidates(plans)
    model = candidates[0].model
    out = check_bundle_output(out_dir, archive=opts.archive)  # before minutes of work, not at their end
    spec = _spec_of(candidates[0], say)
    if spec.transformer is not None and spec.transformer.family == "decoder":  # LLMs: onnxruntime-genai, KV cache
        from .decoder import build_decoder

        if opts.task_data:
            raise InputError(f"--task-data {opts.task_data}: task accuracy is measured for encoders and classifiers; "
                             f"a decoder's quality is next-token agreement and perplexity on the evaluation text")

        return build_decoder(candidates, out, spec, opts, say, t0)
    for p in candidates:
        _check_plan_fits(p, spec)

    # Evaluation data first: a bad file should fail before minutes of work.
    is_text = spec.transformer is None or spec.transformer.family != "vision"
    kind = "text" if is_text else "vision"
    image = None if is_text else image_format(model, spec.transformer.image_size or 224,
                                              spec.transformer.num_channels or 3)
    if opts.eval_data:
        ev = load_eval_data(opts.eval_data, opts.eval_samples, kind=kind, image=image)
    else:
        ev = default_eval_data(kind, opts.eval_samples, image_size=image.image_size if image else 224,
                               channels=image.channels if image else 3)
    task = load_task_data(opts.task_data, kind=kind, image=image) if opts.task_data else None
    calib: list[str] = []
    calib_images = None
    if not is_text and opts.calibration_data:
        calib_images = load_eval_data(opts.calibration_data, opts.calibration_samples, kind=kind, image=image,
                                      flag="--calibration-data").inputs
    if is_text:
        from ..data.calibration import load_calibration_texts

        calib = load_calibration_texts(opts.calibration_data, limit=opts.calibration_samples,
                                       exclude=ev.inputs if isinstance(ev.inputs, list) else ())
    recovery: tuple[str, ...] = ()
    if is_text and any(p.pass_of("distill") or getattr(p.pass_of("structured_prune"), "recovery", None)
                       or getattr(p.pass_of("structured_prune"), "reconstruct_samples", 0)
                       for p in candidates):   # recovery and the refit after pruning learn from all the text there is
        recovery = tuple(load_calibration_texts(opts.calibration_data, recovery=True,
                                                exclude=ev.inputs if isinstance(ev.inputs, list) else ()))
    say(f"loading {model}")
    loaded = load_for_build(model, corpus=calib + (list(ev.inputs) if is_text else []))
    if loaded.random_weights:
        say(f"{loaded.name}: built from its config with random weights (seed 0); quality is measured against the "
            f"same random model")
    if loaded.kind == "vision" and calib_images is None:
        from ..quality import synthetic_images

        calib_images = synthetic_images(16, image_size=loaded.image_size or 224, channels=loaded.channels or 3,
                                        seed=1).inputs
    reference_fn = torch_embed_fn(loaded.model, loaded.tokenizer, max_length=min(256, spec.seq_len))
    task_ref = reference_fn(task.inputs) if task is not None else None  # once, whatever the number of plans

    attempts: list[Attempt] = []
    work_root = Path(tempfile.mkdtemp(prefix="edge-sdk-build-"))
    try:
        for i, cand in enumerate(candidates, 1):
            cand = _with_budget(cand, opts.distill_steps, opts.distill_seconds)
            say(f"plan {i}/{len(candidates)}: {cand.summary()}")
            work = work_root / f"plan{i}"
            work.mkdir()
            state = BuildState(model=loaded.model, teacher=loaded.model, tokenizer=loaded.tokenizer, work_dir=work,
                               model_kind=loaded.kind, calibration_texts=tuple(calib), recovery_texts=recovery,
                               calibration_images=calib_images, progress=say)
            for cfg in cand.passes:  # exactly the plan's passes, in its order
                say(f"  pass {cfg.kind}")
                state = apply_pass(cfg, state)
            rec = _primary(state, cand)
            say(f"  measuring quality of {rec.path.name} on {ev.name}")
            cand_fn = _embed_fn(rec, loaded, min(256, spec.seq_len))
            report: QualityReport = evaluate(reference_fn, cand_fn, ev, max_quality_drop=budget, task_data=task,
                                             task_reference=task_ref, id2label=_id2label(loaded.model))
            cos = next((m.value for m in report.metrics if m.name == "mean_cosine"), None)
            detail = ", ".join(f"{m.name} {m.value:.4f}" for m in report.metrics)
            if report.failed:
                detail += f" (below the budget: {'; '.join(report.failed)})"
            attempts.append(Attempt(plan=cand.summary(), passed=report.passed, cosine=cos, detail=detail))
            if not report.passed:
                say(f"  quality gate: {'; '.join(report.failed)} (budget {budget}): trying the next plan")
                state = state.note(f"rejected {cand.summary()}: {detail}")
                continue
            say(f"  quality gate passed: {detail}")
            return _write(out, cand, rec, state, loaded, spec, report, ev, attempts, opts.archive, model, t0)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    tried = "; ".join(f"[{a.plan}] {a.detail.partition('(below the budget: ')[2].rstrip(')') or a.detail}"
                      for a in attempts)
    on = ev.name + (f" and {task.name}" if task is not None else "")
    raise QualityGateError(f"no plan met --max-quality-drop {budget} (cosine, top-1 agreement and retained task "
                           f"accuracy ≥ {1 - budget:.3f}) on {on}: "
                           f"{tried}; raise --max-quality-drop, give a plan with lighter compression, or more "
                           f"recovery (--distill-steps)")


def _id2label(model) -> dict[str, str] | None:
    """The class labels a classifier's config names, shipped so `edge_device.Model.classify` can return them."""
    if not type(model).__name__.endswith(("ForSequenceClassification", "ForImageClassification")):
        return None
    labels = getattr(getattr(model, "config", None), "id2label", None) or {}
    return {str(k): str(v) for k, v in labels.items()} or None


def _write(out: Path, plan: Plan, rec, state, loaded, spec: ModelSpec, report, ev, attempts: list[Attempt],
           archive: bool, model: str, t0: float) -> Bundle:
    from .sources import tokenizer_files

    say = state.progress or (lambda s: None)
    model_file = "model.xml" if rec.format == "openvino" else f"model.{rec.format}"
    files: dict[str, Path] = {model_file: rec.path}
    if rec.format == "openvino":
        files["model.bin"] = rec.path.with_suffix(".bin")
    preprocessing: dict[str, str] = {}
    staging = Path(tempfile.mkdtemp(prefix="edge-sdk-stage-"))
    try:
        if loaded.tokenizer is not None:
            for f in tokenizer_files(loaded.tokenizer, staging / "tokenizer"):
                files[f"tokenizer/{f.relative_to(staging / 'tokenizer').as_posix()}"] = f
            preprocessing["tokenizer"] = "tokenizer/"
        else:
            preprocessing["image"] = f"pixel_values float32 [batch, {loaded.channels}, {loaded.image_size}, " \
                                     f"{loaded.image_size}], normalised like the model's image processor"
        sample = _sample_inputs(loaded, ev.inputs, plan.seq_len, staging / "sample_inputs.npz")
        files["sample_inputs.npz"] = sample
        if plan.pass_of("structured_prune") is not None:
            # What survived pruning (kept heads/neurons/layers as indices into the original model): lets anyone
            # rebuild the pruned architecture (passes.pruned_io.load_pruned) and audit what was removed.
            record = state.pruning
            if record is not None:
                p = staging / "pruning.json"
                p.write_text(record.model_dump_json(indent=2))
                files["pruning.json"] = p
        ins, outs = _signature(rec)
        provider = plan.runtime.provider
        runtime_config = ({"INFERENCE_PRECISION_HINT": rec.details.get("inference_precision", "f32")}
                          if rec.format == "openvino" else {})
        if rec.format == "openvino" and rec.details.get("static_shape"):
            from ..device.engines.openvino import STATIC_SHAPES

            runtime_config[STATIC_SHAPES] = "x".join(str(d) for d in rec.details["static_shape"])
        artifact = Artifact(path=model_file, format=rec.format, runtime=RUNTIME_OF_FORMAT[rec.format],
                            provider=provider, precision=plan.precision, inputs=ins, outputs=outs,
                            runtime_config=runtime_config)
        log = list(state.log) + [f"attempt: {a.plan}: {'passed' if a.passed else 'rejected'} ({a.detail})"
                                 for a in attempts]
        manifest = write_bundle(out, files, dict(
            model_id=model, model_name=spec.name, device=plan.device,
            plan=plan.model_copy(update={"model_spec": spec}),  # bench and report re-cost the plan from it
            artifacts=[artifact],
            preprocessing=preprocessing, sample_inputs="sample_inputs.npz", versions=tool_versions(), quality=report,
            build_log=log, id2label=_id2label(loaded.model)))
        say(f"bundle written: {out}")
        arc = None
        if archive:
            arc = pack_archive(out, out.with_name(out.name + ".edgepkg"))
            say(f"archive written: {arc}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle(path=out, archive=arc, manifest=manifest, attempts=attempts,
                  seconds=round(time.perf_counter() - t0, 2))
