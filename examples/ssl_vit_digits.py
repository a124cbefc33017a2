"""A self-supervised ViT trained on real images, compressed for two devices, with its *task* accuracy in the gate.

1. Data: scikit-learn's bundled `digits` (1797 handwritten digits, 8x8 grayscale; real data, no download),
   upsampled to 32x32 and split 70/30 per class (seed 0).
2. Self-supervised pretraining (SimCLR): a tiny transformers ViT (1 channel, patch 8, hidden 64, 4 layers, 4 heads)
   learns to match two random augmentations (rotation, scale, shift, noise) of each *unlabeled* training image
   against every other image of the batch (NT-Xent loss on a projection head that is thrown away afterwards).
3. Linear probe: logistic regression on the ViT's embedding — the L2-normalised CLS token, exactly the vector
   edge-sdk exports and compares by cosine — fitted on the train split's labels, scored on the held-out split.
4. edge-sdk: `save_pretrained` → `edge_sdk.plan` for two devices → `edge_sdk.build` of a plan that prunes and
   quantizes, with `eval_data` (the held-out images, .npy), `calibration_data` (the training images: pruning
   importance, recovery distillation, quantization) and `task_data` (.npz: inputs, labels, train_mask). The gate
   then also holds the retained probe accuracy (probe fitted on the uncompressed model's train embeddings, scored
   on the compressed model's test embeddings) to >= 1 - max_quality_drop.

    .venv/bin/python examples/ssl_vit_digits.py                          # the README numbers (minutes on 2 cores)
    .venv/bin/python examples/ssl_vit_digits.py --steps 20 --out /tmp/d  # a smoke run (the probe stays lower)

Prints a table (device, plan, size, cosine, probe accuracy uncompressed / compressed, retained) and writes it to
OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import edge_sdk  # noqa: E402
from edge_sdk.quality import linear_probe_accuracy, stratified_split, torch_embed_fn  # noqa: E402

IMAGE_SIZE = 32
TEST_FRACTION = 0.3
DEVICES = ("host", "jetson-orin-nano")


def digits_pixels() -> tuple[np.ndarray, np.ndarray]:
    """float32 pixel_values [1797, 1, 32, 32] in [-1, 1] (ViT's default normalisation) and the labels 0-9."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0           # digits are 0..16
    x = F.interpolate(x, size=IMAGE_SIZE, mode="bilinear", align_corners=False).clamp(0, 1)
    return ((x - 0.5) / 0.5).numpy(), d.target.astype(np.int64)


def vit_config(hidden: int = 64, layers: int = 4, heads: int = 4, patch: int = 8):
    from transformers import ViTConfig

    return ViTConfig(image_size=IMAGE_SIZE, patch_size=patch, num_channels=1, hidden_size=hidden,
                     num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def augment(x, gen):
    """A random view of each image: rotation ±15°, scale 0.85-1.15, shift ±15 %, pixel noise."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) - 0.5) * 2 * math.radians(15)
    scale = 0.85 + 0.3 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.3
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1   # background stays -1
    return out + 0.1 * torch.randn(out.shape, generator=gen)


def pretrain(pixels: np.ndarray, *, steps: int, batch_size: int = 256, temperature: float = 0.2, lr: float = 1e-3,
             seed: int = 0, log=print):
    """SimCLR on unlabeled images → a transformers ViTModel."""
    import torch
    import torch.nn.functional as F
    from transformers import ViTModel

    torch.manual_seed(seed)
    model = ViTModel(vit_config())   # its pooler stays untrained: edge-sdk embeds with the CLS token
    hidden = model.config.hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(hidden, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=lr, weight_decay=0.05)
    x = torch.as_tensor(pixels)
    gen = torch.Generator().manual_seed(seed)
    b = min(batch_size, len(x))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        for g in opt.param_groups:   # warm-up, then cosine decay
            g["lr"] = lr * min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * step / steps))
        batch = x[torch.randint(len(x), (b,), generator=gen)]
        views = torch.cat([augment(batch, gen), augment(batch, gen)])
        z = F.normalize(head(model(pixel_values=views).last_hidden_state[:, 0]), dim=-1)
        sim = (z @ z.T / temperature).fill_diagonal_(-1e9)
        loss = F.cross_entropy(sim, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0 or step + 1 == steps:
            log(f"  step {step + 1}/{steps}: NT-Xent {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    return model.eval()


def embed(model, pixels: np.ndarray) -> np.ndarray:
    """The embedding edge-sdk exports and measures: the L2-normalised CLS token (quality.torch_embed_fn)."""
    return torch_embed_fn(model, batch_size=256)(pixels)


def write_data(out: Path, pixels: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray
               ) -> dict[str, Path]:
    """The files a build reads: eval (test images), calibration (train images), task (all, labels, split)."""
    out.mkdir(parents=True, exist_ok=True)
    mask = np.zeros(len(labels), dtype=bool)
    mask[train] = True
    files = {"eval": out / "eval_images.npy", "calibration": out / "train_images.npy", "task": out / "task.npz"}
    np.save(files["eval"], pixels[test])
    np.save(files["calibration"], pixels[train])
    np.savez(files["task"], inputs=pixels, labels=labels, train_mask=mask)
    return files


def compressing_plans(model_dir: Path, device: str, *, runtime: str = "onnxruntime", top: int = 12) -> list:
    """The device's plans that both prune and quantize to integers, best first (the planner only ranks them; the
    build's gate decides). Planned with a loose *estimate* budget so that pruning is on the table at all (the
    planner's priors come from MiniLM); the build then measures the real drop against the user's budget."""
    ps = edge_sdk.plan(str(model_dir), device=device, runtime=runtime, top=top, max_quality_drop=0.1)
    plans = [p for p in ps.runnable() if p.pass_of("structured_prune") is not None
             and p.pass_of("quantize_onnx") is not None and p.precision.startswith("int")]
    if not plans:
        raise SystemExit(f"{device}: no plan that prunes and quantizes among {[p.summary() for p in ps.plans]}")
    return plans


def run(out: Path, *, steps: int, batch_size: int, devices=DEVICES, max_quality_drop: float = 0.02,
        distill_steps: int | None = 300, reuse: bool = False, log=print) -> dict:
    """Pretrain (or reuse), probe, then build for each device. `distill_steps` fixes the recovery budget in steps
    (the plans' own budget is in seconds, which would make the numbers depend on the machine's load)."""
    import torch

    pixels, labels = digits_pixels()
    train, test = stratified_split(labels, test_fraction=TEST_FRACTION, seed=0)
    model_dir = out / "ssl-vit-digits"
    t0 = time.perf_counter()
    if reuse and (model_dir / "config.json").is_file():
        from transformers import ViTModel

        log(f"digits: {len(train)} train / {len(test)} held-out images; reusing the pretrained {model_dir}")
        model = ViTModel.from_pretrained(model_dir).eval()
    else:
        log(f"digits: {len(train)} train / {len(test)} held-out images, SimCLR for {steps} steps (batch "
            f"{batch_size})")
        model = pretrain(pixels[train], steps=steps, batch_size=batch_size, log=log)
        model.save_pretrained(model_dir)
    train_s = time.perf_counter() - t0
    with torch.inference_mode():
        emb = embed(model, pixels)
    probe = linear_probe_accuracy(emb[train], labels[train], emb[test], labels[test])
    log(f"linear probe on the uncompressed SSL ViT: {probe:.4f} held-out accuracy ({train_s:.0f} s of pretraining)")
    files = write_data(out / "data", pixels, labels, train, test)
    rows = []
    for device in devices:
        plans = compressing_plans(model_dir, device)
        log(f"{device}: building {plans[0].summary()} (then the next of {len(plans)} pruned+quantized plans if "
            f"the gate refuses it)")
        b = edge_sdk.build(plan=plans, out_dir=out / f"bundle-{device}", eval_data=str(files["eval"]),
                           calibration_data=str(files["calibration"]), task_data=str(files["task"]),
                           max_quality_drop=max_quality_drop, distill_steps=distill_steps, archive=False,
                           progress=lambda s: log(f"    {s}"))
        m = b.manifest
        q, t = m.quality, m.quality.task
        cos = next(x.value for x in q.metrics if x.name == "mean_cosine")
        rows.append(dict(device=device, plan=m.plan.summary(), size_kb=m.files[m.primary.path].size_bytes / 1e3,
                         mean_cosine=cos, probe_uncompressed=t.reference_accuracy,
                         probe_compressed=t.candidate_accuracy, probe_refit=t.candidate_refit_accuracy,
                         retained=t.retained, passed=q.passed, rejected=[a.plan for a in b.attempts if not a.passed]))
    fp32_kb = sum(p.numel() for p in model.parameters()) * 4 / 1e3
    return dict(steps=steps, batch_size=batch_size, pretrain_seconds=round(train_s, 1), probe_accuracy=probe,
                train_images=len(train), test_images=len(test), fp32_weights_kb=fp32_kb, builds=rows)


def table(res: dict) -> str:
    lines = [f"SSL ViT on digits: linear probe {res['probe_accuracy']:.4f} on {res['test_images']} held-out images "
             f"(fp32 weights {res['fp32_weights_kb']:.0f} kB)", "",
             "| device | plan | size | cosine | probe uncompressed | probe compressed | retained | re-fitted probe |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["builds"]:
        lines.append(f"| {r['device']} | {r['plan']} | {r['size_kb']:.0f} kB | {r['mean_cosine']:.4f} | "
                     f"{r['probe_uncompressed']:.4f} | {r['probe_compressed']:.4f} | {r['retained']:.4f} | "
                     f"{r['probe_refit']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="SimCLR steps (300: the README numbers)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", default="out/ssl-digits")
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--max-quality-drop", type=float, default=0.02)
    ap.add_argument("--reuse", action="store_true", help="reuse OUT/ssl-vit-digits if pretrained before")
    args = ap.parse_args(argv)
    out = Path(args.out)
    res = run(out, steps=args.steps, batch_size=args.batch_size, devices=tuple(args.devices.split(",")),
              max_quality_drop=args.max_quality_drop, reuse=args.reuse)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
