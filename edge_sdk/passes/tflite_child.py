"""What runs inside .venv-litert: a torch.export program (.pt2) becomes a .tflite through litert-torch, then
ai-edge-quantizer quantizes it when asked.

Run as a script by the isolated environment's python (see scripts/setup-litert for why it is isolated); the main
environment never calls these functions. So this file imports nothing from edge_sdk (that environment has no
edge_sdk and an older pydantic) and only the standard library at module level, which also keeps the pass
registry's import of every `passes` module harmless.

Why a .pt2 and not a pickled nn.Module: the program is plain aten ops with the weights inside, so this side needs
no model code at all — no transformers class, no edge_sdk wrapper, no pruning record — and a pruned model whose
layers have different head counts arrives exactly as traced. torch.export only promises the format within one
torch version, so the job names the main side's version and a mismatch is refused with the fix.

Job (argv[1], JSON, written by export_tflite.py):
  program        the .pt2 (a module whose forward takes the inputs by name and returns a dict of named outputs)
  sample         .npz, one array per graph input, in input order (the static shapes of the .tflite)
  output         where the final .tflite goes
  quantize       none | dynamic_int8 | fp16 | full_int8
  calibration    .npz with one (N, ...) array per input (full_int8 only), else null
  torch_version  the main side's torch.__version__
  result         where result.json goes: {"ok": true, timings, versions, recipe} or {"ok": false, "error": "..."}
Exit status 0 on success, 1 on failure; result.json says why.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

SIGNATURE = "serving_default"  # litert-torch's default signature name; ai-edge-quantizer calibrates per signature


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _convert(job: dict, float_path: Path) -> float:
    import numpy as np
    import torch

    import litert_torch

    program = torch.export.load(job["program"])
    with np.load(job["sample"]) as sample:
        kwargs = {name: torch.from_numpy(sample[name]) for name in sample.files}
    started = time.perf_counter()
    # ep.module() is already traced in eval mode; litert-torch re-exports it (strict=False) and lowers it.
    litert_torch.convert(program.module(), sample_kwargs=kwargs).export(str(float_path))
    return time.perf_counter() - started


def _quantize(job: dict, float_path: Path, out_path: Path) -> tuple[float, str]:
    import numpy as np
    from ai_edge_quantizer import qtyping, quantizer, recipe

    started = time.perf_counter()
    q = quantizer.Quantizer(str(float_path))
    mode = job["quantize"]
    calibration = None
    if mode == "dynamic_int8":
        name = "dynamic_wi8_afp32"  # int8 per-channel weights, float activations quantized at run time
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    elif mode == "fp16":
        name = "weight_only fp16 (float_casting)"  # fp16 weights, dequantized to fp32 compute
        q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                 algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING)
    elif mode == "full_int8":
        name = "static_wi8_ai8"  # int8 weights and activations, activation ranges from calibration
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        with np.load(job["calibration"]) as cal:
            arrays = {n: cal[n] for n in cal.files}
        count = len(next(iter(arrays.values())))
        samples = [{n: a[i:i + 1] for n, a in arrays.items()} for i in range(count)]
        calibration = q.calibrate({SIGNATURE: samples}, num_threads=2)
    else:
        raise ValueError(f"unknown quantize mode {mode!r}")
    q.quantize(calibration, enable_progress_report=False).export_model(str(out_path), overwrite=True)
    return time.perf_counter() - started, name


def run(job: dict) -> dict:
    import torch

    if torch.__version__ != job["torch_version"]:
        raise RuntimeError(f"the LiteRT environment has torch {torch.__version__} but the model was exported with "
                           f"torch {job['torch_version']}; make the torch pins in scripts/setup-env and "
                           f"scripts/setup-litert agree and rerun scripts/setup-litert")
    out_path = Path(job["output"])
    float_path = out_path if job["quantize"] == "none" else out_path.with_name(out_path.stem + ".float.tflite")
    convert_s = _convert(job, float_path)
    result: dict = {"ok": True, "convert_seconds": round(convert_s, 2), "float_bytes": os.path.getsize(float_path),
                    "versions": _versions()}
    if job["quantize"] != "none":
        quantize_s, recipe_name = _quantize(job, float_path, out_path)
        float_path.unlink(missing_ok=True)
        result.update(quantize_seconds=round(quantize_s, 2), recipe=recipe_name)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: tflite_child.py JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    try:
        result = run(job)
        code = 0
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as one message
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:600]}"}
        code = 1
    tmp = Path(job["result"] + ".partial")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, job["result"])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
