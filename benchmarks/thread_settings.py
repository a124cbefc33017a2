#!/usr/bin/env python3
"""What do the device package's thread settings buy? Side by side in one process, interleaved, same inputs.

1. onnxruntime encoders (MiniLM int8 dynamic, exported and quantized by the build's own functions, batch 1 at 16 and
   128 tokens), three session settings, every other one default (threads: one per physical core):
     no spinning      session.intra_op.allow_spinning=0 (what the device package did before)
     spin, then stop  allow_spinning=1 + session.force_spinning_stop=1 (what it does now: engines/base.py)
     spin always      allow_spinning=1 (onnxruntime's default; threads keep spinning after a run)
   Between two runs the script does `--gap-ms` of other Python work, as an application would; a run of a PyTorch
   matmul after each onnxruntime run shows what threads still spinning after a run cost the next thing that runs.
2. onnxruntime-genai (a decoder bundle, e.g. the demo's out/demo/llm-host or benchmarks/decoder_speed.py's out dir):
   its own default threads against intra_op_num_threads = physical cores (what the device package now sets), time to
   first token (append_tokens of a 32-token prompt) and the median decode step.

Each variant's median over `--rounds` interleaved rounds is printed with the spread of its round medians, and the
ratio to the new setting (> 1: the new setting is faster).

    .venv/bin/python benchmarks/thread_settings.py [--decoder BUNDLE] [--rounds 5] [--gap-ms 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # PyTorch's own threads must not spin either

import numpy as np  # noqa: E402

SPIN = {"no spinning": {"session.intra_op.allow_spinning": "0"},
        "spin, then stop": {"session.intra_op.allow_spinning": "1", "session.force_spinning_stop": "1"},
        "spin always": {"session.intra_op.allow_spinning": "1"}}
NEW = "spin, then stop"


def _timed(fn, n: int, gap_s: float, after=None) -> tuple[float, float | None]:
    """(median ms of fn, median ms of `after` run right after each fn) over n runs with gap_s of Python work between."""
    ts, after_ts = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        ts.append((time.perf_counter_ns() - t0) / 1e6)
        if after is not None:
            t0 = time.perf_counter_ns()
            after()
            after_ts.append((time.perf_counter_ns() - t0) / 1e6)
        end = time.perf_counter() + gap_s
        while time.perf_counter() < end:  # busy Python work, not a sleep
            pass
    return statistics.median(ts), statistics.median(after_ts) if after_ts else None


def _spread(xs: list[float]) -> str:
    return f"{min(xs):.3f}-{max(xs):.3f}"


def encoders(rounds: int, gap_s: float) -> None:
    import onnxruntime as ort
    import torch

    from prediction_accuracy import _artifact, _feeds

    torch.set_num_threads(2)
    a, b = torch.randn(256, 256), torch.randn(256, 256)

    def torch_after():
        a @ b

    with tempfile.TemporaryDirectory(prefix="edge-threads-") as tmp:
        path = _artifact("minilm", "int8_dynamic", Path(tmp), {})
        sessions = {}
        for name, entries in SPIN.items():
            so = ort.SessionOptions()
            for k, v in entries.items():
                so.add_session_config_entry(k, v)
            sessions[name] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        for seq in (16, 128):
            feeds = _feeds(path, 1, seq)
            ms = {n: [] for n in SPIN}
            after = {n: [] for n in SPIN}
            for _ in range(rounds):
                for name, s in sessions.items():
                    s.run(None, feeds)
                    m, t = _timed(lambda: s.run(None, feeds), 60, gap_s, torch_after)
                    ms[name].append(m)
                    after[name].append(t)
            base = statistics.median(ms[NEW])
            print(f"\nMiniLM int8 dynamic, batch 1, {seq} tokens ({rounds} rounds, {gap_s * 1e3:.1f} ms of Python "
                  f"between runs; then a 256x256 PyTorch matmul after each run)")
            print(f"  {'setting':16} {'ms':>8} {'rounds':>14} {'vs new':>7}   {'matmul after':>12}")
            for name in SPIN:
                med = statistics.median(ms[name])
                print(f"  {name:16} {med:8.3f} {_spread(ms[name]):>14} {med / base:7.2f}   "
                      f"{statistics.median(after[name]):10.3f} ms")


def decoder(bundle: Path, rounds: int) -> None:
    import onnxruntime_genai as og

    from edge_sdk.device.probe import physical_cores

    model_dir = bundle / "model"
    cores = physical_cores()
    variants = {"genai default": None, f"{cores} threads (new)": cores}
    models = {}
    for name, threads in variants.items():
        cfg = og.Config(str(model_dir))
        if threads:
            cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        models[name] = og.Model(cfg)
    ttft = {n: [] for n in variants}
    step = {n: [] for n in variants}
    prompt = np.arange(1, 33, dtype=np.int32)
    for _ in range(rounds):
        for name, m in models.items():
            t_round, s_round = [], []
            for _ in range(4):
                p = og.GeneratorParams(m)
                p.set_search_options(max_length=64, min_length=64, do_sample=False)
                g = og.Generator(m, p)
                t0 = time.perf_counter_ns()
                g.append_tokens(prompt)
                g.generate_next_token()
                t_round.append((time.perf_counter_ns() - t0) / 1e6)
                for _ in range(8):
                    t0 = time.perf_counter_ns()
                    g.generate_next_token()
                    s_round.append((time.perf_counter_ns() - t0) / 1e6)
            ttft[name].append(statistics.median(t_round))
            step[name].append(statistics.median(s_round))
    new = f"{cores} threads (new)"
    print(f"\nonnxruntime-genai {getattr(og, '__version__', '?')}, {bundle.name}: 32-token prompt ({rounds} rounds)")
    print(f"  {'threads':16} {'TTFT ms':>9} {'rounds':>16} {'vs new':>7} {'decode ms':>10} {'rounds':>14} "
          f"{'vs new':>7}")
    for name in variants:
        t, s = statistics.median(ttft[name]), statistics.median(step[name])
        print(f"  {name:16} {t:9.3f} {_spread(ttft[name]):>16} {t / statistics.median(ttft[new]):7.2f} "
              f"{s:10.3f} {_spread(step[name]):>14} {s / statistics.median(step[new]):7.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decoder", help="a decoder bundle directory (onnxruntime-genai)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gap-ms", type=float, default=0.5, help="Python work between two runs, ms")
    args = ap.parse_args()
    encoders(args.rounds, args.gap_ms / 1e3)
    if args.decoder:
        decoder(Path(args.decoder), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
