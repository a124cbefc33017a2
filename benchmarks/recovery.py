#!/usr/bin/env python3
"""How much quality does structured pruning cost on MiniLM, and how much does label-free recovery buy back?

Prunes all-MiniLM-L6-v2 (heads/FFN neurons ranked by importance, optional layer dropping), measures the cosine of
sentence embeddings to the unpruned model on the HELD-OUT everyday sentences (edge_sdk/quality/data/
eval_sentences.txt, never trained on), distils on unlabeled text (the shipped WordNet corpus or --calibration-data)
for a time budget, and measures again; also PyTorch latency of teacher vs student (batch 1, real lengths,
interleaved, medians). Run it niced on a shared machine:

    nice -n 10 .venv/bin/python benchmarks/recovery.py --ffn-ratio 0.5 --head-ratio 0.25 --budget-seconds 240
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from edge_sdk.data import length_grouped, load_calibration_texts, text_batches  # noqa: E402
from edge_sdk.data.calibration import held_out_sentences  # noqa: E402
from edge_sdk.modelspec.sources import builtin_model_dir  # noqa: E402
from edge_sdk.schemas.passes import DistillConfig, StructuredPruneConfig  # noqa: E402
from edge_sdk.passes.distill import distill  # noqa: E402
from edge_sdk.passes.prune import count_parameters, prune_gradually, structured_prune  # noqa: E402
from edge_sdk.passes.prune_importance import pooled_embedding  # noqa: E402


@torch.no_grad()
def embed(model, tokenizer, texts, batch_size=64):
    model.eval()
    out = [pooled_embedding(model(**b).last_hidden_state, b)
           for b in text_batches(tokenizer, texts, batch_size=batch_size, max_length=128)]
    return torch.cat(out)


def cosines(a: torch.Tensor, b: torch.Tensor) -> dict:
    c = (a * b).sum(-1)
    s = sorted(c.tolist())
    return {"mean": sum(s) / len(s), "p10": s[len(s) // 10], "min": s[0]}


@torch.no_grad()
def latency_ms(teacher, student, tokenizer, texts, repeats=3) -> dict:
    """Batch 1, each sentence at its real length; A/B interleaved per sentence; medians and p10/p90 of ratios."""
    enc = [tokenizer(t, return_tensors="pt") for t in texts]
    for m in (teacher, student):
        for e in enc[:5]:
            m(**e)
    ta, tb, ratios = [], [], []
    for _ in range(repeats):
        for e in enc:
            t0 = time.perf_counter(); teacher(**e); t1 = time.perf_counter(); student(**e); t2 = time.perf_counter()
            ta.append((t1 - t0) * 1e3); tb.append((t2 - t1) * 1e3); ratios.append((t1 - t0) / (t2 - t1))
    ratios.sort()
    return {"teacher_ms": statistics.median(ta), "student_ms": statistics.median(tb),
            "speedup_median": statistics.median(ratios), "speedup_p10": ratios[len(ratios) // 10],
            "speedup_p90": ratios[len(ratios) * 9 // 10]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--head-ratio", type=float, default=0.0)
    ap.add_argument("--ffn-ratio", type=float, default=0.0)
    ap.add_argument("--drop-layers", type=int, default=0)
    ap.add_argument("--importance", default="fisher", choices=["fisher", "weight_norm", "activation"])
    ap.add_argument("--calibration-samples", type=int, default=128)
    ap.add_argument("--budget-seconds", type=float, default=180)
    ap.add_argument("--max-steps", type=int, default=100_000)
    ap.add_argument("--gradual-steps", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--hidden-weight", type=float, default=1.0)
    ap.add_argument("--embedding-weight", type=float, default=1.0)
    ap.add_argument("--attention-weight", type=float, default=0.0)
    ap.add_argument("--calibration-data", type=Path, default=None, help="default: the shipped WordNet corpus")
    ap.add_argument("--threads", type=int, default=2, help="for the latency measurement")
    ap.add_argument("--train-threads", type=int, default=2,
                    help="for scoring and distillation (1 is faster when other jobs oversubscribe the cores)")
    ap.add_argument("--speed-sentences", type=int, default=40, help="0 skips the latency measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.train_threads)
    torch.manual_seed(0)

    path = builtin_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    teacher = AutoModel.from_pretrained(path).eval()
    held_out = [s for s in held_out_sentences() if s.strip()]
    if not held_out:
        raise SystemExit("edge_sdk/quality/data/eval_sentences.txt is missing: no held-out sentences to measure on")
    texts = load_calibration_texts(args.calibration_data)          # held-out sentences already excluded
    overlap = {" ".join(s.lower().split()) for s in held_out} & {" ".join(t.lower().split()) for t in texts}
    assert not overlap, "training text overlaps the held-out set"
    calib_texts, train_texts = texts[:args.calibration_samples], texts[args.calibration_samples:]
    calib = list(text_batches(tokenizer, calib_texts, batch_size=16, max_length=128))

    def training(epoch: int):
        return text_batches(tokenizer, length_grouped(train_texts, args.batch_size, seed=epoch),
                            batch_size=args.batch_size, max_length=args.max_length)

    distill_cfg = DistillConfig(max_steps=args.max_steps, max_seconds=args.budget_seconds, learning_rate=args.lr,
                                batch_size=args.batch_size, max_length=args.max_length,
                                hidden_loss_weight=args.hidden_weight, embedding_loss_weight=args.embedding_weight,
                                attention_loss_weight=args.attention_weight)
    # --gradual-steps K: the prune pass itself prunes in K increments with `recovery` after each (budget split K ways)
    prune_cfg = StructuredPruneConfig(head_ratio=args.head_ratio, ffn_ratio=args.ffn_ratio,
                                      drop_layers=args.drop_layers, importance=args.importance,
                                      calibration_samples=args.calibration_samples, increments=args.gradual_steps,
                                      recovery=distill_cfg if args.gradual_steps > 1 else None)
    ref = embed(teacher, tokenizer, held_out)

    t0 = time.monotonic()
    oneshot = copy.deepcopy(teacher)
    record = structured_prune(oneshot, prune_cfg, batches=calib, log=print)
    prune_s = time.monotonic() - t0
    before = cosines(embed(oneshot, tokenizer, held_out), ref)
    print(f"one-shot pruned ({prune_s:.1f} s to score and cut): held-out cosine {before['mean']:.4f} "
          f"(p10 {before['p10']:.4f}, min {before['min']:.4f}); params {count_parameters(teacher):,} → "
          f"{count_parameters(oneshot):,}", flush=True)

    last = {"t": 0.0}

    def progress(step, total, info):
        if info["seconds"] - last["t"] >= 30:
            last["t"] = info["seconds"]
            print(f"  step {step}, {info['seconds']:.0f} s, loss {info['loss']:.4f}", flush=True)

    if args.gradual_steps > 1:
        student = copy.deepcopy(teacher)
        record, results = prune_gradually(student, teacher, prune_cfg, calibration=calib, training=training,
                                          progress=progress, log=print)
        steps, seconds = sum(r.steps for r in results), sum(r.seconds for r in results)
        first, final = results[0].first_loss, results[-1].last_loss
    else:
        student = oneshot
        r = distill(student, teacher, training, distill_cfg, layer_map=record.kept_layers, progress=progress)
        steps, seconds, first, final = r.steps, r.seconds, r.first_loss, r.last_loss
    after = cosines(embed(student, tokenizer, held_out), ref)
    print(f"after recovery: {steps} steps in {seconds:.0f} s ({steps * args.batch_size:,} sentences seen), "
          f"loss {first:.4f} → {final:.4f}; held-out cosine {after['mean']:.4f} (p10 {after['p10']:.4f}, "
          f"min {after['min']:.4f})", flush=True)
    result = {"config": vars(args) | {"calibration_data": str(args.calibration_data)}, "record": record.summary(),
              "params_teacher": count_parameters(teacher), "params_student": count_parameters(student),
              "cosine_before_recovery": before, "cosine_after_recovery": after, "steps": steps,
              "seconds": seconds, "loss_first": first, "loss_last": final, "held_out_sentences": len(held_out)}
    if args.speed_sentences:
        torch.set_num_threads(args.threads)
        speed = latency_ms(teacher, student, tokenizer, held_out[:args.speed_sentences])
        result["latency"] = speed
        print(f"PyTorch fp32, batch 1, real lengths, {args.threads} threads: teacher {speed['teacher_ms']:.1f} ms, "
              f"student {speed['student_ms']:.1f} ms, speedup {speed['speedup_median']:.2f}× "
              f"(p10 {speed['speedup_p10']:.2f}, p90 {speed['speedup_p90']:.2f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
