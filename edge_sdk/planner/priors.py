"""Quality priors: how much a knob is expected to cost, as cosine drop of embeddings against the fp32 model.

These are ESTIMATES taken from measurements on all-MiniLM-L6-v2 on this project's 2-vCPU VM (2026-11) and, where
marked, from general knowledge. The int8 figures come from the same quantizers the build runs (`edge-sdk build
--model minilm --device host`; `--device raspberry-pi-5 --runtime litert` for LiteRT), which print the measured
cosine; the pruning figures from `benchmarks/recovery.py`; static QDQ on all ops and 50 % unstructured sparsity
from one-off development runs with no committed script. The build measures the real quality and overrules them.
Drops combine multiplicatively: cosine = Π (1 - drop_i).
"""

from __future__ import annotations

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

# Structured pruning + label-free distillation on the shipped WordNet corpus (≈ 4 min, ≈ 150 steps of batch 32,
# lr 2e-4, Fisher-ranked heads/neurons), cosine on the 350 held-out sentences (benchmarks/recovery.py, 2026-11):
#   heads −25 % → 0.974; FFN −25 % → 0.963; FFN −50 % + heads −25 % → 0.877. Losses were still falling, so these are
#   floors: longer recovery should do better. Per unit ratio: heads 0.104; FFN 0.20 (0.149 at −25 %, 0.20 reproduces
#   the combined row exactly).
HEAD_DROP_PER_RATIO = 0.104
FFN_DROP_PER_RATIO = 0.20
# Dropping whole layers: no measurement here; general knowledge says ≈ as harmful as pruning the same fraction of
# all heads and neurons together. Labelled as an estimate.
LAYER_DROP_PER_FRACTION = 0.40
UNSTRUCTURED_50 = Prior(0.10, "50 % magnitude sparsity: cosine 0.76 without recovery (measured), ≈0.90 with short "
                              "recovery (estimate)")
SPARSE_24 = Prior(0.10, "2:4 sparsity ≈ 50 % unstructured quality (estimate)")


def pruning_drop(head_ratio: float, ffn_ratio: float, layer_fraction: float) -> float:
    keep = (1 - HEAD_DROP_PER_RATIO * head_ratio) * (1 - FFN_DROP_PER_RATIO * ffn_ratio) * \
        (1 - LAYER_DROP_PER_FRACTION * layer_fraction)
    return 1 - keep


def combine(*drops: float) -> float:
    keep = 1.0
    for d in drops:
        keep *= 1 - d
    return 1 - keep


def risk_label(drop: float) -> str:
    return "low" if drop < 0.01 else "medium" if drop < 0.03 else "high"
