#!/usr/bin/env python3
"""How much quality does structured pruning cost on MiniLM, and how much does label-free recovery buy back per minute?

Prunes all-MiniLM-L6-v2 (heads/FFN neurons ranked by importance, optional layer dropping), measures the cosine of
sentence embeddings to the unpruned model on the HELD-OUT everyday sentences (edge_sdk/quality/data/
eval_sentences.txt, never trained on; also on those that share few words with any training text), distils on
unlabeled text (the shipped recovery corpus, everyday English written for the project, or --calibration-data) for
each recovery budget, and measures again. Every budget is its own run from the same pruned model (the learning-rate
schedule spans the budget), so the rows are the curve the planner's priors are fitted to (edge_sdk/planner/priors.py).
The steps done within each budget are printed: on shared cores a minute buys fewer. Optionally PyTorch latency of
teacher vs student (batch 1, real lengths, interleaved, medians). Run it niced:

    nice -n 10 .venv/bin/python benchmarks/recovery.py --ffn-ratio 0.5 --budget-minutes 1 5 15 30
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
from edge_sdk.data.calibration import held_out_sentences, near_copies  # noqa: E402
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


def cosines(a: torch.Tensor, b: torch.Tensor, far: list[int] | None = None) -> dict:
    c = (a * b).sum(-1)
    s = sorted(c.tolist())
    out = {"mean": sum(s) / len(s), "p10": s[len(s) // 10], "min": s[0]}
    if far:
        out["far_mean"] = c[far].mean().item()
    return out


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


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--head-ratio", type=float, default=0.0)
    ap.add_argument("--ffn-ratio", type=float, default=0.0)
    ap.add_argument("--drop-layers", type=int, default=0)
    ap.add_argument("--importance", default="fisher", choices=["fisher", "weight_norm", "activation"])
    ap.add_argument("--allocation", default="global", choices=["global", "uniform"],
                    help="how many heads/neurons each layer keeps (global: one ranking; what the planner plans)")
    ap.add_argument("--calibration-samples", type=int, default=128, help="texts for the importance scores")
    ap.add_argument("--reconstruct-samples", type=int, default=StructuredPruneConfig().reconstruct_samples,
                    help="texts on which the FFN down projections are refitted after the cut (0: off, the "
                         "default; 2048 measured); the importance texts plus the first training texts, never the "
                         "in-domain check texts")
    ap.add_argument("--budget-minutes", type=float, nargs="+", default=[5.0],
                    help="recovery budgets; each is a separate run from the same pruned model")
    ap.add_argument("--max-steps", type=int, default=1_000_000, help="also stop after this many steps")
    ap.add_argument("--steps-per-minute", type=float, default=None,
                    help="budgets in steps instead of wall time: minutes × this rate (measured on an idle machine), "
                         "for cores shared with other jobs; the wall time taken is printed")
    ap.add_argument("--gradual-steps", type=int, default=1, help="prune in K increments, recovery between them")
    d = DistillConfig()
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--max-length", type=int, default=d.max_length)
    ap.add_argument("--lr", type=float, default=d.learning_rate)
    ap.add_argument("--lr-schedule", default=d.lr_schedule, choices=["cosine", "linear", "constant"])
    ap.add_argument("--hidden-weight", type=float, default=d.hidden_loss_weight)
    ap.add_argument("--embedding-weight", type=float, default=d.embedding_loss_weight)
    ap.add_argument("--attention-weight", type=float, default=d.attention_loss_weight)
    ap.add_argument("--attention-layers", default=d.attention_layers, choices=["last", "all"])
    ap.add_argument("--train-embeddings", action="store_true")
    ap.add_argument("--calibration-data", type=Path, default=None, help="default: the shipped corpora (calibration "
                    "for the importance scores, recovery for distillation)")
    ap.add_argument("--in-domain", type=int, default=350,
                    help="also measure on this many texts of the training corpus kept out of training (the gap to "
                         "the held-out sentences is what the domain of the recovery text costs)")
    ap.add_argument("--far-threshold", type=float, default=0.3,
                    help="also report the cosine on the held-out sentences that share less than this fraction of "
                         "their words (Jaccard) with every training text")
    ap.add_argument("--threads", type=int, default=2, help="for the latency measurement")
    ap.add_argument("--train-threads", type=int, default=2, help="for scoring and distillation")
    ap.add_argument("--speed-sentences", type=int, default=0, help="> 0: also measure PyTorch latency")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.train_threads)
    torch.manual_seed(0)

    path = builtin_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    teacher = AutoModel.from_pretrained(path).eval()
    held_out = [s for s in held_out_sentences() if s.strip()]
    if not held_out:
        raise SystemExit("edge_sdk/quality/data/eval_sentences.txt is missing: no held-out sentences to measure on")
    # As a build does it: importance scores from the calibration text, distillation on the recovery text (the same
    # user file when --calibration-data is given); held-out sentences already excluded from both.
    calib_texts = load_calibration_texts(args.calibration_data)[:args.calibration_samples]
    texts = load_calibration_texts(args.calibration_data, recovery=True)
    overlap = {" ".join(s.lower().split()) for s in held_out} & {" ".join(t.lower().split()) for t in texts}
    assert not overlap, "training text overlaps the held-out set"
    scored = set(calib_texts)       # the in-domain check texts are neither scored on nor trained on
    in_domain = [t for t in texts if t not in scored][:args.in_domain]
    checked = set(in_domain)
    train_texts = [t for t in texts if t not in checked]
    calib = list(text_batches(tokenizer, calib_texts, batch_size=16, max_length=128))
    n_rec = args.reconstruct_samples
    refit = list(text_batches(tokenizer, (calib_texts + train_texts)[:n_rec], batch_size=64, max_length=128)) \
        if n_rec else None

    def training(epoch: int):
        return text_batches(tokenizer, length_grouped(train_texts, args.batch_size, seed=epoch),
                            batch_size=args.batch_size, max_length=args.max_length)

    near = near_copies(held_out, train_texts, args.far_threshold)
    far = [j for j in range(len(held_out)) if j not in near]
    print(f"{len(far)} of {len(held_out)} held-out sentences share < {args.far_threshold:g} of their words with every "
          "training text", flush=True)
    ref = embed(teacher, tokenizer, held_out)
    ref_in = embed(teacher, tokenizer, in_domain) if in_domain else None
    t0 = time.monotonic()
    prune_cfg = StructuredPruneConfig(head_ratio=args.head_ratio, ffn_ratio=args.ffn_ratio,
                                      drop_layers=args.drop_layers, importance=args.importance,
                                      calibration_samples=args.calibration_samples, allocation=args.allocation,
                                      reconstruct_samples=n_rec)
    oneshot = copy.deepcopy(teacher)
    record = structured_prune(oneshot, prune_cfg, batches=calib, teacher=teacher, reconstruct=refit, log=print)
    prune_s = time.monotonic() - t0
    before = cosines(embed(oneshot, tokenizer, held_out), ref, far)
    print(f"one-shot pruned ({prune_s:.1f} s to score, cut and refit): held-out cosine {before['mean']:.4f} "
          f"(p10 {before['p10']:.4f}, min {before['min']:.4f}); params {count_parameters(teacher):,} → "
          f"{count_parameters(oneshot):,}; {len(train_texts):,} training texts", flush=True)
    rows = []
    for minutes in args.budget_minutes:
        steps_budget = round(minutes * args.steps_per_minute) if args.steps_per_minute else args.max_steps
        cfg = DistillConfig(max_steps=steps_budget, max_seconds=None if args.steps_per_minute else minutes * 60,
                            learning_rate=args.lr,
                            lr_schedule=args.lr_schedule, batch_size=args.batch_size, max_length=args.max_length,
                            hidden_loss_weight=args.hidden_weight, embedding_loss_weight=args.embedding_weight,
                            attention_loss_weight=args.attention_weight, attention_layers=args.attention_layers,
                            train_embeddings=args.train_embeddings)
        last = {"t": 0.0}

        def progress(step, total, info):
            if info["seconds"] - last["t"] >= 60:
                last["t"] = info["seconds"]
                print(f"  step {step}, {info['seconds']:.0f} s, loss {info['loss']:.4f}", flush=True)

        if args.gradual_steps > 1:   # the prune pass's own schedule: K increments, recovery split between them
            student = copy.deepcopy(teacher)
            gradual = prune_cfg.model_copy(update={"increments": args.gradual_steps, "recovery": cfg})
            _, results = prune_gradually(student, teacher, gradual, calibration=calib, training=training,
                                         reconstruct=refit, progress=progress, log=print)
        else:
            student = copy.deepcopy(oneshot)
            results = [distill(student, teacher, training, cfg, layer_map=record.kept_layers, progress=progress)]
        steps, seconds = sum(r.steps for r in results), sum(r.seconds for r in results)
        after = cosines(embed(student, tokenizer, held_out), ref, far)
        inside = cosines(embed(student, tokenizer, in_domain), ref_in)["mean"] if in_domain else None
        row = {"budget_minutes": minutes, "steps": steps, "seconds": round(seconds, 1),
               "sentences_seen": steps * args.batch_size, "loss_first": results[0].first_loss,
               "loss_last": results[-1].last_loss, "cosine_after_recovery": after, "cosine_in_domain": inside}
        rows.append(row)
        loss = f"loss {row['loss_first']:.4f} → {row['loss_last']:.4f}; " if steps else ""
        print(f"budget {minutes:g} min: {steps} steps in {seconds:.0f} s ({row['sentences_seen']:,} sentences), "
              f"{loss}held-out cosine {after['mean']:.4f} "
              f"(p10 {after['p10']:.4f}, min {after['min']:.4f}; {after.get('far_mean', float('nan')):.4f} on the "
              f"{len(far)} far from training)"
              + (f"; on {len(in_domain)} unseen corpus texts {inside:.4f}" if in_domain else ""), flush=True)
    print(f"\n{record.summary()}; one-shot cosine {before['mean']:.4f}")
    print("| budget (min) | steps | sentences | cosine after recovery |")
    for r in rows:
        print(f"| {r['budget_minutes']:g} | {r['steps']} | {r['sentences_seen']:,} | "
              f"{r['cosine_after_recovery']['mean']:.4f} |")
    result = {"config": vars(args) | {"calibration_data": str(args.calibration_data)}, "record": record.summary(),
              "params_teacher": count_parameters(teacher), "params_student": count_parameters(oneshot),
              "cosine_before_recovery": before, "runs": rows, "held_out_sentences": len(held_out)}
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
