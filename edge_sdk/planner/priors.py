"""Quality priors: how much a knob is expected to cost, as cosine drop of embeddings against the fp32 model.

These are ESTIMATES taken from measurements on all-MiniLM-L6-v2 on this project's 2-vCPU VM (2026-11) and, where
marked, from general knowledge. The int8 figures come from the same quantizers the build runs (`edge-sdk build
--model minilm --device host`; `--device raspberry-pi-5 --runtime litert` for LiteRT), which print the measured
cosine; the pruning figures from `benchmarks/recovery.py`; static QDQ on all ops and 50 % unstructured sparsity
from one-off development runs with no committed script. The build measures the real quality and overrules them.
Drops combine multiplicatively: cosine = Π (1 - drop_i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Prior:
    drop: float
    basis: str


PRECISION_PRIORS: dict[str, Prior] = {
    "fp32": Prior(0.0, "reference precision"),
    "fp16": Prior(0.0005, "fp16 weights+activations: cosine ≈ 0.9995 on encoders (estimate)"),
    "bf16": Prior(0.002, "bf16: 8-bit mantissa, cosine ≈ 0.998 (estimate)"),
    "fp8": Prior(0.01, "fp8 e4m3 with per-tensor scales (estimate, unmeasured here)"),
    "int8_dynamic": Prior(0.0085, "measured: ORT dynamic int8 per-channel on MiniLM → cosine 0.9915"),
    "int8_static": Prior(0.011, "measured: ORT static QDQ excluding FFN down-projections → cosine 0.989 "
                                "(all ops: 0.41)"),
    "int4_weight_only": Prior(0.015, "int4 weight-only, block 32, round-to-nearest (estimate; LLM perplexity "
                                     "typically +2-4 %)"),
}

# Full-integer static int8 (every op quantized, MinMax calibration): what Edge TPU / NPU delegates need.
FULL_INTEGER_STATIC = Prior(0.59, "measured: ORT static QDQ on ALL ops of MiniLM → cosine 0.41 (GELU outliers in the "
                                  "FFN down-projection inputs); full-integer delegates quantize every op")

# TFLite dynamic int8 through ai-edge-quantizer measured better than ORT (0.9979).
LITERT_INT8_DYNAMIC = Prior(0.0021, "measured: LiteRT dynamic_wi8_afp32 (ai-edge-quantizer) on MiniLM → cosine 0.998")
# OpenVINO + NNCF on MiniLM, built by `edge-sdk build --device host --runtime openvino` (measured on the shipped
# evaluation sentences, 2026-11): the int8 recipes keep quality better than ORT's; int4 weights on an encoder this
# small do not.
OPENVINO_PRIORS = {
    "int8_static": Prior(0.0032, "measured: OpenVINO + NNCF int8 (transformer preset, accuracy control) on MiniLM "
                                 "→ cosine 0.9968"),
    "int8_dynamic": Prior(0.0006, "measured: OpenVINO int8 weight compression (NNCF, activations quantized at run "
                                  "time) on MiniLM → cosine 0.9994"),
    "int4_weight_only": Prior(0.056, "measured: OpenVINO int4 weight compression (NNCF int4_sym, group 128, all "
                                     "layers) on MiniLM → cosine 0.944"),
}

# Structured pruning + label-free recovery, as a function of the recovery budget. Held-out cosine of
# all-MiniLM-L6-v2 (fp32, before quantization) on the 350 evaluation sentences after Fisher-ranked one-shot pruning
# (allocation="global", what the planner plans; scores on the shipped calibration corpus) and `minutes` of
# distillation with the DistillConfig defaults (every layer's hidden states + pooled embedding, lr 4e-4 with warm-up
# and cosine decay, frozen embeddings, batch 32) on the shipped recovery corpus (WordNet's usage examples). Minute 0 =
# one-shot pruning, no recovery. Measured with benchmarks/recovery.py (2026-11-30, one run per point, a 2-vCPU VM),
# every point a step budget at 192 steps/min (1 min = 192 steps, 30 min = 5,760), because shared cores make
# wall-clock budgets meaningless (a "15 min" run once did 400 steps):
#     nice -n 5 .venv/bin/python benchmarks/recovery.py --ffn-ratio 0.5 --budget-minutes 1 5 15 30 \
#         --steps-per-minute 192
#     nice -n 5 .venv/bin/python benchmarks/recovery.py --ffn-ratio 0.5 --head-ratio 0.25 \
#         --budget-minutes 1 5 15 --steps-per-minute 192
#     nice -n 10 .venv/bin/python benchmarks/recovery.py --ffn-ratio 0.25 --budget-minutes 0 1 5 15 30 \
#         --steps-per-minute 192
#   FFN −50 %:               0 → 0.831, 1 → 0.926, 5 → 0.949, 15 → 0.960, 30 → 0.964
#   FFN −50 % & heads −25 %: 0 → 0.815, 1 → 0.915, 5 → 0.941, 15 → 0.953, 30 → not measured: held at the 15-min
#   value (conservative; FFN alone gained 0.004 from 15 to 30 min)
#   FFN −25 %:               0 → 0.930, 1 → 0.967, 5 → 0.979, 15 → 0.983, 30 → 0.985
#   Half the FFN cut costs less than half the drop (0.017 at 15 min, where halving −50 %'s 0.040 says 0.020): the
#   global ranking takes the least important neurons first (here half of layers 1-2's, almost none of layers 5-6's),
#   so the planner interpolates between the measured ratios instead of scaling the −50 % curve.
# Conservative for a build, whose budget is wall-clock: 192 steps/min was the idle rate on the whole calibration
# corpus, and the recovery corpus's shorter sentences run ≈ 1.4× faster (960 steps in 204 s against 296 s).
# FFN −50 % re-measured after the recovery corpus became everyday English written for the project (2026-12-01), at
# 120 steps/min (distillation on it ran 111 steps in one idle wall minute against 177 on the WordNet examples, back to
# back: longer sentences; the VM was slower that day than when 192 was measured):
#     nice -n 10 .venv/bin/python benchmarks/recovery.py --ffn-ratio 0.5 --budget-minutes 30 15 5 1 \
#         --steps-per-minute 120
#   FFN −50 %: 1 → 0.934, 5 → 0.959, 15 → 0.969, 30 → 0.9725 (on the WordNet examples: 0.926 / 0.949 / 0.960 / 0.964);
#   on the 248 held-out sentences sharing < 30 % of their words with every training text: 0.939 / 0.962 / 0.971 /
#   0.974, so the gain is not from near-copies.
# Re-measured after that text doubled to 30,264 lines (2026-12-01, same command; a Zen 3 VM, where both texts ran
# 100 steps per idle minute back to back): 1 → 0.9326, 5 → 0.9587, 15 → 0.9692, 30 → 0.9734, the same curve within
# 0.001 (fewer repeats of each line did not matter; unseen lines of the recovery text score 0.973 too).
# FFN −25 % re-measured on it the same day (`--ffn-ratio 0.25 --budget-minutes 30 15 5 1 --steps-per-minute 120`):
# 0 → 0.9295, 1 → 0.9704, 5 → 0.9831, 15 → 0.9873, 30 → 0.9890 (0.974 / 0.985 / 0.989 / 0.990 on the 221 far from
# training; on the WordNet examples it was 0.967 / 0.979 / 0.983 / 0.985). FFN −50 % & heads −25 %, the same day
# (`--ffn-ratio 0.5 --head-ratio 0.25 --budget-minutes 15 5 1 --steps-per-minute 120`): 0 → 0.8154, 1 → 0.9234,
# 5 → 0.9526, 15 → 0.9645 (0.930 / 0.957 / 0.967 far from training; WordNet: 0.915 / 0.941 / 0.953); its 30-min
# point measured alone the next session (`--ffn-ratio 0.5 --head-ratio 0.25 --budget-minutes 30 --steps-per-minute
# 120`): 0.9693 (0.971 far from training). Until then it was held at the 15-min value, which made heads look dearer
# at 30 min than at 15 and `--recovery-minutes 30` pick a slower plan than 15. The head-pruned student runs faster
# (1,800 steps in 827 s against 1,514 s for FFN −25 %), so counting it at 120 steps a minute is conservative.
# Distilling on the whole calibration corpus instead (glosses too) gave 0.921 / 0.944 / 0.956 / 0.961 (FFN) and
# 0.910 / 0.935 / 0.948 (with heads). The same students score 0.942–0.978 on unseen sentences of the corpus they
# trained on: the rest of the gap is the domain of the recovery text (WordNet vs everyday sentences); a build given
# the user's own text (--calibration-data) should do better than these priors.
RECOVERY_CURVES: dict[str, tuple[tuple[float, float], ...]] = {
    "ffn50": ((0, 0.831), (1, 0.933), (5, 0.959), (15, 0.969), (30, 0.973)),   # the 30,264-line text, see above
    "ffn50_heads25": ((0, 0.815), (1, 0.923), (5, 0.953), (15, 0.964), (30, 0.969)),  # the 30,264-line text
    "ffn25": ((0, 0.930), (1, 0.970), (5, 0.983), (15, 0.987), (30, 0.989)),  # the 30,264-line text, see above
    "heads25": ((0, 0.973), (1, 0.983), (5, 0.990), (15, 0.993)),  # heads alone, that text: see HEADS_ONLY_ONE_SHOT
}
#: FFN ratio → the curve measured at it; ffn_drop interpolates between them (and 0 at ratio 0)
FFN_CURVES = ((0.25, "ffn25"), (0.5, "ffn50"))
# Heads alone, one-shot (global Fisher ranking), no recovery: head ratio → held-out cosine. Measured with
#   nice -n 10 .venv/bin/python benchmarks/recovery.py --head-ratio R --budget-minutes 0 --steps-per-minute 192
# (ratio 0.125 removes round(1.5) = 2 of 12 heads, so it is listed as 1/6.) The cost grows faster than the ratio past
# the 0.25 the recovery curves cover: heads −50 % costs 3.6× heads −25 %, so beyond 0.25 the head drop is scaled by
# (ratio / 0.25) ** (HEAD_EXPONENT − 1), assumed to hold after recovery too. Checked on heads −1/3 alone (4 of 12, what
# `plan --model minilm --device host --recovery-minutes 15` picked then), `--head-ratio 0.3333 --budget-minutes 0 5 15`:
# measured 0.959 / 0.983 / 0.986 against these priors' 0.954 / 0.986 / 0.988 — one-shot conservative, recovered
# 0.001–0.003 optimistic (both on the WordNet examples).
# Heads −25 % alone recovering on the everyday text (2026-12-01, `--head-ratio 0.25 --budget-minutes 1 5 15
# --steps-per-minute 120`): 0 → 0.9731, 1 → 0.9830, 5 → 0.9902, 15 → 0.9927 (0.984 / 0.991 / 0.993 far from
# training) — the "heads25" curve. Until then heads alone were assumed to recover in proportion to the FFN −50 % curve,
# which said 0.989 / 0.993 / 0.995 at 1 / 5 / 15 min: 0.002–0.006 optimistic. A build's `--recovery-minutes 5` plan
# (ORT dynamic int8, heads −25 %) was predicted 0.985 and its gate measured 0.9813; 0.9902 × int8's 0.9915 is 0.982.
HEADS_ONLY_ONE_SHOT = ((1 / 6, 0.985), (0.25, 0.973), (0.5, 0.902))
HEAD_RATIO_MEASURED = 0.25
#: how fast the head drop grows past HEAD_RATIO_MEASURED: heads −50 % one-shot against heads −25 %,
#: log((1 − 0.902) / (1 − 0.973)) / log 2 = 1.86
HEAD_EXPONENT = round(math.log((1 - dict(HEADS_ONLY_ONE_SHOT)[0.5]) / (1 - dict(HEADS_ONLY_ONE_SHOT)[0.25]))
                      / math.log(0.5 / HEAD_RATIO_MEASURED), 2)
# Recovery is opt-in: a default plan builds in seconds to a minute, so it does not prune (one-shot pruning costs more
# than the default 0.02 budget); `--recovery-minutes 15` lets the planner prune with that much distillation.
# By these curves 5 minutes bring FFN −12.5 % to ≈ 0.992 before int8, and 15 minutes FFN −25 % to 0.987; heads −17 %
# one-shot measured 0.985, so it fits the default budget only without int8 on top.
DEFAULT_RECOVERY_MINUTES = 0.0
#: what a step-budgeted distill pass (a plan written before recovery minutes were part of the plan) is taken to be
STEP_BUDGET_MINUTES = 5.0
MAX_RECOVERY_MINUTES = 24 * 60.0
# Dropping whole layers: no measurement here; general knowledge says ≈ as harmful as pruning the same fraction of
# all heads and neurons together. Labelled as an estimate.
LAYER_DROP_PER_FRACTION = 0.40
UNSTRUCTURED_50 = Prior(0.10, "50 % magnitude sparsity: cosine 0.76 without recovery (measured), ≈0.90 with short "
                              "recovery (estimate)")
SPARSE_24 = Prior(0.10, "2:4 sparsity ≈ 50 % unstructured quality (estimate)")


def recovered_cosine(curve: str, minutes: float) -> float:
    """Measured cosine after `minutes` of recovery: piecewise linear in log(1 + minutes) between the measured points,
    flat beyond the last one (no extrapolation), never falling with more budget."""
    points = RECOVERY_CURVES[curve]
    x = math.log1p(max(minutes, 0.0))
    best = points[0][1]
    for (m0, c0), (m1, c1) in zip(points, points[1:]):
        x0, x1 = math.log1p(m0), math.log1p(m1)
        if x <= x1:
            return max(best, c0 + (c1 - c0) * (x - x0) / (x1 - x0))
        best = max(best, c1)
    return best


def ffn_drop(ratio: float, minutes: float) -> float:
    """Cosine drop of FFN pruning at `ratio` after `minutes` of recovery: linear in the ratio between 0 and the
    measured ratios (FFN_CURVES); past the last one, that last stretch's slope (the further the cut, the more each
    neuron costs)."""
    points = [(0.0, 0.0)] + [(r, 1 - recovered_cosine(curve, minutes)) for r, curve in FFN_CURVES]
    for (r0, d0), (r1, d1) in zip(points, points[1:]):
        if ratio <= r1:
            return d0 + (d1 - d0) * (ratio - r0) / (r1 - r0)
    (r0, d0), (r1, d1) = points[-2:]
    return d1 + (d1 - d0) * (ratio - r1) / (r1 - r0)


def head_drop_per_ratio(minutes: float, ffn_ratio: float = 0.0) -> float:
    """Drop per unit head ratio, from the two measured cuts with heads −25 %: alone (the "heads25" curve, flat past its
    last point) and what they add on top of FFN −50 % (the combined curve over the FFN one). Heads cost more on an
    unpruned FFN (0.010 against 0.006 after 5 min), so between FFN 0 and −50 % the drop is interpolated linearly in
    the FFN ratio: both measured cuts are then predicted as measured."""
    alone = 1 - recovered_cosine("heads25", minutes)
    on_ffn50 = 1 - recovered_cosine("ffn50_heads25", minutes) / recovered_cosine("ffn50", minutes)
    share = min(max(ffn_ratio, 0.0) / 0.5, 1.0)
    return max(alone + (on_ffn50 - alone) * share, 0.0) / HEAD_RATIO_MEASURED


def pruning_drop(head_ratio: float, ffn_ratio: float, layer_fraction: float,
                 recovery_minutes: float = DEFAULT_RECOVERY_MINUTES) -> float:
    """Predicted cosine drop of structured pruning after `recovery_minutes` of label-free distillation."""
    heads = head_drop_per_ratio(recovery_minutes, ffn_ratio) * head_ratio * \
        max(1.0, head_ratio / HEAD_RATIO_MEASURED) ** (HEAD_EXPONENT - 1)
    keep = (1 - heads) * (1 - ffn_drop(ffn_ratio, recovery_minutes)) * (1 - LAYER_DROP_PER_FRACTION * layer_fraction)
    return 1 - keep


def pruning_basis(recovery_minutes: float) -> str:
    ffn = recovered_cosine("ffn50", recovery_minutes)
    quarter = recovered_cosine("ffn25", recovery_minutes)
    both = recovered_cosine("ffn50_heads25", recovery_minutes)
    heads = recovered_cosine("heads25", recovery_minutes)
    how = f"{recovery_minutes:g} min of label-free recovery" if recovery_minutes else "no recovery"
    return (f"pruning with {how} (--recovery-minutes): fitted to MiniLM measurements, FFN −25 % → cosine "
            f"{quarter:.3f}, −50 % → {ffn:.3f}, + heads −25 % → {both:.3f}; heads −25 % alone → {heads:.3f}")


def combine(*drops: float) -> float:
    keep = 1.0
    for d in drops:
        keep *= 1 - d
    return 1 - keep


def risk_label(drop: float) -> str:
    return "low" if drop < 0.01 else "medium" if drop < 0.03 else "high"
