"""`bench` for decoder bundles: time to first token, prefill and decode tokens/s, peak memory.

    python3 -m edge_device bench --bundle DIR [--engine auto|onnxruntime-genai|onnxruntime] [--new-tokens 32]
                                 [--prompt-tokens N|max] [--warmup N] [--iterations T | --duration S]
                                 [--threads N] [--repeat K]

The prompt is the bundle's `prompt/input_ids` sample; --prompt-tokens N repeats or cuts it to N tokens ('max': the
context minus --new-tokens, so prefill is measured at the plan's context length). Each generation is greedy and
ignores EOS, so it produces exactly --new-tokens tokens (fewer when the context ends first). `--iterations` counts
timed decode tokens: the benchmark runs as many generations as it takes to time that many (`--duration`:
generations until the time is up).
A warm-up generation of a few tokens comes first when --warmup > 0. The result record is bench.py's, with
`runs` = [decode (one latency per generated token after the first), prefill (one TTFT per generation)] and a
`generation` summary. On Jetson, tegrastats runs beside the generations (power.py): the record gets its power
rails and temperatures, and the summary the energy per decoded token (mean board power × decode time per token;
the mean covers prefill too, so it is a slight overestimate). Engines: engines/generation.py.
"""

import os
import platform

from .engines.generation import open_generator
from .errors import EXIT_BAD_INPUT, DeviceError
from .events import emit, utc_now
from .integrity import content_id, verify_decoder_dir, verify_file
from .machine import thermal_zones
from .power import Tegrastats
from .stats import board_model, cpu_model, current_rss_mb, median, peak_rss_mb, ru_maxrss_mb

WARMUP_TOKENS = 8


def add_arguments(p):
    p.add_argument("--engine", default="auto", choices=("auto", "onnxruntime-genai", "onnxruntime"),
                   help="decoder bundles: generation engine (auto: onnxruntime-genai when installed)")
    p.add_argument("--new-tokens", type=int, default=32, help="decoder bundles: tokens generated per generation")
    p.add_argument("--prompt-tokens", default=None,
                   help="decoder bundles: prompt length N (the bundle's prompt repeated or cut to N), or 'max' (the "
                        "context minus --new-tokens); default: the bundle's prompt")


def is_decoder(art):
    return isinstance(art.get("decoder"), dict)


def _prompt(bundle, manifest):
    import numpy as np

    rel = manifest.get("sample_inputs")
    if not rel:
        raise DeviceError("the bundle has no sample inputs (manifest.json: sample_inputs is null)", EXIT_BAD_INPUT)
    path = verify_file(bundle, manifest, rel)
    with np.load(path, allow_pickle=False) as npz:
        if "prompt/input_ids" not in npz.files:
            raise DeviceError("%s has no prompt/input_ids (a decoder bundle's benchmark prompt)" % rel,
                              EXIT_BAD_INPUT)
        return [int(x) for x in npz["prompt/input_ids"][0]]


def _sized_prompt(prompt, want, context, new_tokens):
    """The bundle's prompt repeated or cut to `want` tokens ('max': context − new_tokens). A repeated prompt costs
    the same prefill as any text of its length (attention does not look at token values)."""
    if want == "max":
        if not context:
            raise DeviceError("--prompt-tokens max needs the bundle's context length (its decoder entry has none)",
                              EXIT_BAD_INPUT)
        n = context - new_tokens
    else:
        try:
            n = int(want)
        except ValueError:
            raise DeviceError("--prompt-tokens: expected a number or 'max', got %r" % want, EXIT_BAD_INPUT)
    if n < 1 or (context and n + 1 > context):
        raise DeviceError("--prompt-tokens %s: the prompt must be 1 to %d tokens (context %d, at least one new "
                          "token)" % (want, context - 1, context), EXIT_BAD_INPUT)
    if not prompt:
        raise DeviceError("the bundle's prompt sample is empty", EXIT_BAD_INPUT)
    return (prompt * (n // len(prompt) + 1))[:n]


def _timed_generations(gen, prompt, new_tokens, args):
    """Generations until --iterations decode tokens (or --duration seconds) are timed."""
    import time

    results = []
    timed = 0
    start = time.perf_counter()
    total = args.duration if args.duration else args.iterations
    while True:
        g = gen.generate(prompt, new_tokens)
        results.append(g)
        timed += len(g.decode_ms)
        done = (time.perf_counter() - start) if args.duration else timed
        emit("progress", done=round(min(done, total), 3), total=total,
             unit="seconds" if args.duration else "iterations")
        if done >= total or (not g.decode_ms and len(results) >= 3):
            return results


def _runs(results, prompt_len):
    decode = [round(x, 4) for g in results for x in g.decode_ms]
    ttft = [round(g.ttft_ms, 4) for g in results]
    runs = []
    if decode:
        runs.append({"inputs": "decode", "batch": 1, "shapes": {"input_ids": [1, 1]}, "latencies_ms": decode,
                     "wall_s": round(sum(decode) / 1e3, 4), "iterations": len(decode)})
    runs.append({"inputs": "prefill", "batch": 1, "shapes": {"input_ids": [1, prompt_len]}, "latencies_ms": ttft,
                 "wall_s": round(sum(ttft) / 1e3, 4), "iterations": len(ttft)})
    for r in runs:
        r["round_p50_ms"] = [median(r["latencies_ms"])]
    return runs


def _summary(gen, results, prompt_len, new_tokens, power):
    decode = [x for g in results for x in g.decode_ms]
    mw = (power or {}).get("power_mw_mean")
    per_token = round(median(decode), 4) if decode else None  # the energy below is of this (reported) number
    ttft = median([g.ttft_ms for g in results])
    prefill = median([g.prefill_ms for g in results])
    return {
        "engine": gen.runtime,
        "prompt_tokens": prompt_len,
        "new_tokens": new_tokens,
        "generations": len(results),
        "tokens_timed": len(decode),
        "ttft_ms": round(ttft, 4),
        "ttft_ms_samples": [round(g.ttft_ms, 4) for g in results],
        "prefill_ms": round(prefill, 4),
        "setup_ms": round(median([g.setup_ms for g in results]), 4),
        "prefill_tokens_per_s": round(prompt_len / (prefill / 1e3), 2) if prefill > 0 else None,
        "decode_ms_per_token": per_token,
        "decode_tokens_per_s": round(len(decode) / (sum(decode) / 1e3), 2) if decode and sum(decode) > 0 else None,
        "power_mw_mean": None if mw is None else round(mw, 1),
        "energy_mj_per_token": round(mw * per_token / 1e3, 4) if mw is not None and per_token else None,
        "greedy": True,
        "eos_ignored": True,
        "first_tokens": results[0].tokens[:16],
    }


def benchmark(args, bundle, manifest, manifest_sha, art, machine, started_at, runner_version, prediction):
    """bench.py's result record for a decoder artifact (`prediction`: bench.plan_prediction of the manifest)."""
    model_dir = verify_decoder_dir(bundle, manifest, art)
    prompt = _prompt(bundle, manifest)
    context = int(art["decoder"].get("context_length") or 0)
    new_tokens = max(1, args.new_tokens)
    if args.prompt_tokens is not None:
        prompt = _sized_prompt(prompt, args.prompt_tokens, context, new_tokens)
    if context and len(prompt) + new_tokens > context:
        new_tokens = max(1, context - len(prompt))
    emit("start", runner_version=runner_version, pid=os.getpid(), bundle=bundle, artifact=art["path"],
         inputs=["decode", "prefill"], batches=[1], warmup=args.warmup, iterations=args.iterations,
         duration_s=args.duration, threads=args.threads, deadline_s=args.deadline_s, repeat=args.repeat,
         profile_ops=False, engine=args.engine, new_tokens=new_tokens, prompt_tokens=len(prompt),
         warnings=machine["warnings"])
    rss_before = current_rss_mb()
    results = []
    rounds = []
    gen = None
    tegra = Tegrastats(args.tegrastats_interval_ms)
    try:
        for r in range(args.repeat):  # a fresh engine each round
            gen = open_generator(model_dir, args.engine, art.get("provider"), args.threads)
            if args.warmup:
                gen.generate(prompt, min(new_tokens, WARMUP_TOKENS))
            got = _timed_generations(gen, prompt, new_tokens, args)
            rounds.append({"round": r + 1, "model_load_ms": round(gen.load_ms, 3),
                           "first_inference_ms": round(got[0].ttft_ms, 3)})
            results.extend(got)
    finally:
        power = tegra.stop()
    machine["thermal_after"] = thermal_zones() or None
    peak, peak_source = peak_rss_mb()
    skipped = [{"inputs": "decode", "batch": b, "skipped": "the decoder benchmark generates one sequence (batch 1)"}
               for b in args.batch if b != 1]
    return {
        "runner_version": runner_version, "manifest_sha256": manifest_sha, "bundle_id": content_id(manifest["files"]),
        "bundle_dir": os.path.realpath(bundle), "model_name": manifest.get("model_name"),
        "model_id": manifest.get("model_id"), "device": manifest.get("device"),
        "plan_prediction": prediction,
        "artifact": {"path": art["path"], "format": art.get("format"), "precision": art.get("precision")},
        "runtime": gen.runtime, "runtime_module": gen.module, "runtime_version": gen.version,
        "provider_requested": gen.provider_requested, "provider_used": gen.provider_used,
        "fell_back": gen.fallback_reason is not None, "fallback_reason": gen.fallback_reason,
        "threads": args.threads or getattr(gen, "threads", None), "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(), "board": board_model(),
        "arch": platform.machine(), "os": platform.platform(), "python_version": platform.python_version(),
        "numpy_version": __import__("numpy").__version__,
        "model_load_ms": rounds[0]["model_load_ms"], "first_inference_ms": rounds[0]["first_inference_ms"],
        "rss_before_load_mb": None if rss_before is None else round(rss_before, 1),
        "peak_rss_mb": None if peak is None else round(peak, 1), "peak_rss_source": peak_source,
        "ru_maxrss_mb": None if ru_maxrss_mb() is None else round(ru_maxrss_mb(), 1),
        "warmup": args.warmup, "iterations": args.iterations, "duration_s": args.duration, "tegrastats": power,
        "started_at": started_at, "finished_at": utc_now(), "runs": _runs(results, len(prompt)) + skipped,
        "repeat": args.repeat, "rounds": rounds, "machine": machine, "op_profile": None,
        "generation": _summary(gen, results, len(prompt), new_tokens, power),
    }
