#!/usr/bin/env python3
"""What does the int4 decoder bundle buy in generation speed and size over PyTorch fp32 eager `generate`?

A LLaMA-family config (default: examples/configs/smollm-135m.json, 134.5 M params) gets random weights (seed 0);
`edge_sdk.build` plans it for this host on onnxruntime and builds the int4 plan (onnxruntime-genai's model builder:
MatMulNBits block 32, KV cache). Both sides then generate from the same prompt (the bundle's prompt/input_ids), greedy,
EOS ignored, the same number of new tokens, the same thread count:
  PyTorch   model.generate(max_new_tokens=N, min_new_tokens=N, do_sample=False), fp32 eager, KV cache on
            time to first token = generate(max_new_tokens=1); decode tokens/s = (N - 1) / (t(N) - t(1))
  bundle    the bundle's own device package in a subprocess (`python -m edge_device bench --new-tokens N`):
            onnxruntime-genai where installed (--engine onnxruntime: plain onnxruntime with a KV-cache loop)
Rounds are interleaved (PyTorch, bundle, PyTorch, bundle, ...); medians and the per-round ratios are printed.
Fairness: OMP_WAIT_POLICY=PASSIVE for PyTorch; onnxruntime runs in its own process (no spinning threads left over).
A random-weight model predicts a near-uniform distribution, so the greedy tokens of the two sides diverge after a few
steps; the count of identical leading tokens is printed for information only. The quality gate is disabled here
(--max-quality-drop 0.99): this harness measures speed; the build's measured top-1 agreement is printed.

    .venv/bin/python benchmarks/decoder_speed.py [--config PATH] [--threads 2] [--new-tokens 32] [--rounds 3]
                                                 [--engine auto|onnxruntime-genai|onnxruntime] [--out DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bundle(config: str, out: Path, threads: int):
    import edge_sdk

    if (out / "manifest.json").is_file():
        from edge_sdk.bundle import verify_bundle

        m = verify_bundle(out)
        if m.model_id == config and m.primary.decoder is not None and m.plan.precision == "int4_weight_only":
            print(f"reusing {out} ({m.plan.summary()})")
            return m
    plans = edge_sdk.plan(config, device="host", runtime="onnxruntime", top=3)
    int4 = next(p for p in plans.plans if p.precision == "int4_weight_only")
    t0 = time.perf_counter()
    res = edge_sdk.build(int4, out_dir=out, max_quality_drop=0.99, eval_samples=32, calibration_samples=2000,
                         archive=False, progress=lambda s: print(f"  {s}", flush=True))
    print(f"built {out} in {time.perf_counter() - t0:.0f} s")
    return res.manifest


def _bundle_run(bundle: Path, threads: int, new_tokens: int, engine: str) -> dict:
    argv = [sys.executable, "-B", "-m", "edge_device", "bench", "--bundle", ".", "--engine", engine,
            "--new-tokens", str(new_tokens), "--iterations", str(2 * (new_tokens - 1)), "--warmup", "1",
            "--threads", str(threads)]
    r = subprocess.run(argv, cwd=bundle, capture_output=True, text=True, timeout=1800)
    last = json.loads(r.stdout.strip().splitlines()[-1])
    if r.returncode != 0:
        raise SystemExit(f"bundle bench failed: {last.get('message')}")
    return last


def _torch_run(model, prompt, new_tokens: int) -> dict:
    import torch

    ids = torch.tensor([prompt], dtype=torch.long)
    kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None, use_cache=True)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, **kw)  # warm-up
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
        t1 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
        t2 = time.perf_counter()
    ttft = t1 - t0
    decode_s = max((t2 - t1) - ttft, 1e-9)
    return {"ttft_ms": ttft * 1e3, "decode_tokens_per_s": (new_tokens - 1) / decode_s,
            "tokens": out[0, len(prompt):].tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--config", default="examples/configs/smollm-135m.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engine", default="auto", choices=("auto", "onnxruntime-genai", "onnxruntime"))
    ap.add_argument("--out", default="out/decoder-speed")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()

    import numpy as np
    import torch

    from edge_sdk.builder.decoder import load_decoder

    out = Path(args.out).resolve()
    manifest = _bundle(args.config, out, args.threads)
    with np.load(out / manifest.sample_inputs) as npz:
        prompt = [int(x) for x in npz["prompt/input_ids"][0]]
    torch.set_num_threads(args.threads)
    loaded = load_decoder(args.config, corpus=["a b c"], seed=0)  # same weights as the build (seed 0)
    model = loaded.model
    params = sum(p.numel() for p in model.parameters())
    torch_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    bundle_mb = sum(f.size_bytes for k, f in manifest.files.items() if k.startswith("model/model.onnx")) / 1e6
    pt, ob = [], []
    for r in range(args.rounds):
        pt.append(_torch_run(model, prompt, args.new_tokens))
        ob.append(_bundle_run(out, args.threads, args.new_tokens, args.engine))
        g = ob[-1]["generation"]
        print(f"round {r + 1}: PyTorch fp32 TTFT {pt[-1]['ttft_ms']:.1f} ms, decode "
              f"{pt[-1]['decode_tokens_per_s']:.1f} tok/s | bundle ({g['engine']}) TTFT {g['ttft_ms']:.1f} ms, "
              f"decode {g['decode_tokens_per_s']:.1f} tok/s, prefill {g['prefill_tokens_per_s']:.0f} tok/s, "
              f"peak RSS {ob[-1]['peak_rss_mb']} MB", flush=True)
    ratios = [o["generation"]["decode_tokens_per_s"] / p["decode_tokens_per_s"] for p, o in zip(pt, ob)]
    ttft_ratios = [p["ttft_ms"] / o["generation"]["ttft_ms"] for p, o in zip(pt, ob)]
    same = 0
    for a, b in zip(pt[0]["tokens"], ob[0]["generation"]["first_tokens"]):
        if a != b:
            break
        same += 1
    q = {m.name: m.value for m in manifest.quality.metrics} if manifest.quality else {}
    rec = {
        "config": args.config, "params": params, "threads": args.threads, "new_tokens": args.new_tokens,
        "prompt_tokens": len(prompt), "rounds": args.rounds, "engine": ob[0]["generation"]["engine"],
        "torch_fp32_mb": round(torch_mb, 2), "bundle_int4_mb": round(bundle_mb, 2),
        "size_ratio": round(torch_mb / bundle_mb, 3),
        "torch_decode_tokens_per_s": round(statistics.median(p["decode_tokens_per_s"] for p in pt), 2),
        "bundle_decode_tokens_per_s": round(statistics.median(o["generation"]["decode_tokens_per_s"] for o in ob), 2),
        "decode_speedup_median": round(statistics.median(ratios), 3), "decode_speedups": [round(x, 3) for x in ratios],
        "torch_ttft_ms": round(statistics.median(p["ttft_ms"] for p in pt), 2),
        "bundle_ttft_ms": round(statistics.median(o["generation"]["ttft_ms"] for o in ob), 2),
        "ttft_speedup_median": round(statistics.median(ttft_ratios), 3),
        "bundle_peak_rss_mb": max(o["peak_rss_mb"] or 0 for o in ob),
        "identical_leading_tokens": same, "build_top1_agreement": q.get("top1_agreement"),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(rec, indent=2))
    print(f"\n{Path(args.config).stem} ({params / 1e6:.1f} M params), {args.threads} threads, greedy, "
          f"{len(prompt)}-token prompt, {args.new_tokens} new tokens, {args.rounds} interleaved rounds:")
    print(f"  decode: int4 bundle {rec['bundle_decode_tokens_per_s']} tok/s vs PyTorch fp32 eager "
          f"{rec['torch_decode_tokens_per_s']} tok/s → {rec['decode_speedup_median']}× (per-round {ratios})")
    print(f"  time to first token: {rec['bundle_ttft_ms']} ms vs {rec['torch_ttft_ms']} ms → "
          f"{rec['ttft_speedup_median']}×")
    print(f"  size: {rec['bundle_int4_mb']} MB vs {rec['torch_fp32_mb']} MB → {rec['size_ratio']}× smaller")
    if args.json:
        Path(args.json).write_text(json.dumps(rec, indent=2))


if __name__ == "__main__":
    main()
