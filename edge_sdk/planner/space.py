"""The search space: which (runtime, precision, pruning, sparsity, layout) combinations exist for a profile, and
why the others are ruled out before any costing."""

from __future__ import annotations

from dataclasses import dataclass

from ..schemas.profile import ComputeUnit, DeviceProfile, Runtime

PLAN_PRECISIONS = ("fp32", "fp16", "bf16", "int8_dynamic", "int8_static", "int4_weight_only")
RUNTIME_PRECISION = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8_dynamic": "int8", "int8_static": "int8",
                     "int4_weight_only": "int4", "fp8": "fp8"}
HEAD_RATIOS = (0.0, 0.125, 0.25, 0.375, 0.5)
FFN_RATIOS = (0.0, 0.125, 0.25, 0.375, 0.5)
LAYER_DROP_FRACTIONS = (0.0, 1 / 6, 1 / 3)
# Artifacts edge-sdk can build today. TensorRT engines are compiled on the device from our ONNX (engines are
# GPU-specific), so "engine" runtimes get an ONNX artifact.
BUILDABLE_FORMATS = {"onnx", "tflite", "engine", "openvino"}
# Providers whose int8 path is dynamic (weights int8, activations quantized at run time). Accelerator delegates
# (TensorRT, Edge TPU, NPUs, DLA) need static, calibrated int8.
DYNAMIC_INT8_PROVIDERS = {"CPUExecutionProvider", "xnnpack", "cpu"}


@dataclass(frozen=True, eq=False)  # identity: one RuntimeUnit per profile runtime in a search
class RuntimeUnit:
    runtime: Runtime
    unit: ComputeUnit

    @property
    def label(self) -> str:
        return f"{self.runtime.name}/{self.runtime.provider}"


def precision_support(profile: DeviceProfile, target: RuntimeUnit, precision: str) -> str | None:
    """None when `precision` runs on this runtime+unit; otherwise the reason it does not (phrased so that the same
    reason groups several runtimes: "fp16 rejected: ...")."""
    rt, unit = target.runtime, target.unit
    need = RUNTIME_PRECISION[precision]
    if need not in rt.precisions:
        if unit.kind == "tpu":
            return f"{precision} rejected: the Edge TPU runs full-integer int8 only"
        if need == "fp16" and unit.kind == "cpu" and "fp16" not in unit.precisions:
            return (f"{precision} rejected: this CPU has no fp16 arithmetic (F16C/NEON convert only), so fp16 buys "
                    f"size only; int8 gives 4× size")
        return f"{precision} rejected: {rt.name}/{rt.provider} supports {', '.join(rt.precisions)} on the {unit.name}"
    if rt.format == "tflite" and precision in ("int4_weight_only", "bf16"):
        return f"{precision} rejected: edge-sdk's LiteRT export has no {precision} path yet"
    if precision == "int4_weight_only":
        return None  # weight-only: dequantized on the fly, computed in float
    if need not in unit.precisions:
        if need == "fp16" and unit.kind == "cpu":
            return (f"{precision} rejected: this CPU has no fp16 arithmetic (F16C/NEON convert only), so fp16 buys "
                    f"size only; int8 gives 4× size")
        if need == "int8" and unit.kind == "gpu":
            return f"{precision} rejected: this GPU has no int8 acceleration (no DP4A/int8 tensor cores)"
        return f"{precision} rejected: the {unit.name} ({unit.kind}) computes in {', '.join(unit.precisions)} only"
    if precision == "int8_dynamic" and rt.name == "openvino":
        return ("int8_dynamic rejected: OpenVINO's int8 weight compression (activations quantized at run time) "
                "measured 1.3x slower than NNCF static int8 on MiniLM padded to 128 and no faster at real lengths "
                "(benchmarks/peer_comparison.py); int8_static is OpenVINO's int8 recipe for encoders")
    if precision == "int8_dynamic" and rt.provider not in DYNAMIC_INT8_PROVIDERS:
        return ("int8_dynamic rejected: accelerator runtimes need calibrated static int8 (activations quantized "
                "ahead of time)")
    return None


def runtime_units(profile: DeviceProfile) -> tuple[list[RuntimeUnit], dict[str, list[str]]]:
    """Runtimes edge-sdk can build for on this profile, and those it cannot (reason → runtimes)."""
    ok: list[RuntimeUnit] = []
    rejected: dict[str, list[str]] = {}
    for rt in profile.runtimes:
        t = RuntimeUnit(rt, profile.unit(rt.unit))
        if rt.format not in BUILDABLE_FORMATS:
            rejected.setdefault(f"{rt.format} artifacts: edge-sdk cannot build them yet (it builds ONNX, LiteRT "
                                f"and OpenVINO IR)", []).append(t.label)
            continue
        if rt.name == "pytorch":
            rejected.setdefault("PyTorch eager: it is the baseline we compress away from, not a deployment "
                                "target", []).append(t.label)
            continue
        ok.append(t)
    return ok, rejected


def pruning_grid(spec, decode: bool) -> list[tuple[float, float, int]]:
    """(head_ratio, ffn_ratio, layers_dropped) with ratios snapped to whole heads/neurons."""
    t = spec.transformer
    if t is None or decode:
        return [(0.0, 0.0, 0)]
    heads, ffn, n = t.num_heads, t.ffn_size, t.num_layers
    seen = set()
    out = []
    for hr in HEAD_RATIOS:
        removed_h = round(heads * hr)
        if removed_h >= heads:
            continue
        for fr in FFN_RATIOS:
            removed_f = round(ffn * fr)
            for lf in LAYER_DROP_FRACTIONS:
                drop = round(n * lf)
                if drop >= n:
                    continue
                key = (removed_h, removed_f, drop)
                if key in seen:
                    continue
                seen.add(key)
                out.append((removed_h / heads, removed_f / ffn if ffn else 0.0, drop))
    return out


def layouts(profile: DeviceProfile, spec, batch: int) -> list[tuple[int, int, int]]:
    """(dp, tp, pp) options. One accelerator → single device; a node → tp must divide the heads and divide (or be a
    multiple of) the KV heads,
    pp ≤ layers, dp divides the batch."""
    n = profile.accelerator_count
    if n <= 1:
        return [(1, 1, 1)]
    t = spec.transformer
    heads = t.num_heads if t else 1
    kv = t.num_kv_heads if t else 1
    layers = t.num_layers if t else 1
    out = []
    for tp in (1, 2, 4, 8, 16):
        # tp must split the query heads evenly, and the KV heads too (or replicate them when tp is a multiple)
        if tp > n or heads % tp or (kv % tp and tp % kv):
            continue
        for pp in (1, 2, 4, 8, 16):
            if tp * pp > n or pp > layers:
                continue
            for dp in (1, 2, 4, 8, 16):
                if dp * tp * pp > n or batch % dp:
                    continue
                out.append((dp, tp, pp))
    return out


# Static int8 recipes. ORT's CPU EP and TensorRT run mixed precision, so edge-sdk keeps the FFN down-projections in
# float (measured on MiniLM: cosine 0.989 instead of 0.41). Full-integer delegates (Edge TPU, NPU delegates, DLA
# without GPU fallback, LiteRT full_int8) must quantize every op.
# OpenVINO + NNCF (model_type=TRANSFORMER, accuracy control) keeps the ops it finds sensitive in float too.
MIXED_STATIC_PROVIDERS = {"CPUExecutionProvider", "TensorrtExecutionProvider", "CUDAExecutionProvider"}


def static_int8_is_mixed(target: RuntimeUnit) -> bool:
    rt = target.runtime
    return (rt.provider in MIXED_STATIC_PROVIDERS or (rt.name == "tensorrt" and target.unit.kind == "gpu")
            or rt.name == "openvino")


def float_kinds(target: RuntimeUnit, precision: str) -> frozenset[str]:
    """Op kinds a recipe keeps in float: mixed static int8 keeps the FFN down-projections in float (ORT, TensorRT);
    NNCF's transformer preset quantizes every linear layer and keeps only non-GEMM ops in float, so OpenVINO's GEMMs
    are all int8."""
    mixed = precision == "int8_static" and static_int8_is_mixed(target) and target.runtime.name != "openvino"
    return frozenset({"ffn_down"}) if mixed else frozenset()


# x86 int8 GEMMs without VNNI multiply uint8×int8 with vpmaddubsw, which sums pairs into int16 and can saturate, so
# ONNX Runtime recommends 7-bit weights (reduce_range) there. VNNI/AMX (vpdpbusd, tdpbusd) accumulate in int32, and
# ARM (sdot/udot, smmla) and accelerators have no such overflow: full 8-bit weights there.
# Source: onnxruntime docs, "Quantize ONNX models" → "When and why do I need to try U8U8?" / reduce_range notes.
INT32_ACCUMULATE_ISA = {"avx512_vnni", "avx_vnni", "amx_int8"}


def int8_reduce_range(profile: DeviceProfile, target: RuntimeUnit) -> bool:
    """True only for an x86-64 CPU unit without VNNI/AMX-INT8: quantize weights to 7 bits there."""
    return (target.unit.kind == "cpu" and profile.architecture == "x86_64"
            and not INT32_ACCUMULATE_ISA & set(profile.isa_features))


# Decoder LLMs are built by onnxruntime-genai's model builder (passes/export_genai.py), which writes ONNX with a KV
# cache for onnxruntime's CPU and CUDA execution providers (`-e cpu|cuda`; fp16 for CUDA only). Its other targets
# (DirectML, WebGPU, TensorRT-RTX) have no profile here, and edge-sdk builds no TensorRT engine, OpenVINO IR or LiteRT
# file of a decoder yet. Where a profile lists one of those EPs on a compute unit, single-device decoder plans on that
# unit use it; the other runtimes there are costed for comparison only. A unit without one (e.g. a GPU whose profile
# lists TensorRT alone) keeps its plans, and their rationale says `build` cannot make them yet: moving a model to
# another unit only because of the tool would be worse advice. Multi-device layouts run with `edge-sdk run-parallel`
# (PyTorch) and keep every runtime.
GENAI_EXECUTION_PROVIDERS = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda"}
DECODER_RUNTIME_REASON = ("decoder LLMs are built with onnxruntime-genai's model builder, for onnxruntime's CPU and "
                          "CUDA execution providers only")


def decoder_build_support(target: RuntimeUnit, precision: str) -> str | None:
    """None when `build` can make a single-device decoder for this runtime and precision; else why not."""
    rt = target.runtime
    if rt.name != "onnxruntime" or rt.provider not in GENAI_EXECUTION_PROVIDERS:
        return f"{DECODER_RUNTIME_REASON} (not {rt.name}/{rt.provider})"
    if GENAI_EXECUTION_PROVIDERS[rt.provider] == "cpu" and precision in ("fp16", "bf16"):
        return f"{DECODER_RUNTIME_REASON}; onnxruntime-genai has no {precision} CPU decoder"
    return None


# Predictions carry ±15-25 % noise (measured P/M spread of `edge-sdk bench`); a plan must be clearly faster to beat a safer one.
NEAR_TIE = 0.05

# Formats whose artifacts have static shapes (export_tflite: batch 1, seq_len tokens): every text runs padded to the
# plan's seq_len, where an ONNX or OpenVINO artifact runs a sentence at its own length. On the everyday evaluation text
# (median 16 tokens) that is the difference between 3.8 and ~21 ms for int8 MiniLM on a 2-vCPU Zen 3
# (benchmarks/peer_comparison.py), which a prediction at seq_len cannot show.
FIXED_SHAPE_FORMATS = frozenset({"tflite"})


# So a fixed-shape plan for text must be predicted faster by more than the predictions' noise (the upper end of the
# ±15-25 % above) to rank above one that takes text at its own length: the prediction at seq_len is exact for the
# first and an upper bound for the second.
FIXED_SHAPE_MARGIN = 0.25


def pays_full_length(c, spec) -> bool:
    """Text inputs always run at the plan's full seq_len on this candidate's artifact (a planner Candidate)."""
    return c.target.runtime.format in FIXED_SHAPE_FORMATS and spec is not None \
        and any(i.name == "input_ids" for i in spec.inputs)


def ranking_factor(c, spec) -> float:
    """What the ranking multiplies a candidate's predicted latency by (and divides its throughput by)."""
    return 1 + FIXED_SHAPE_MARGIN if pays_full_length(c, spec) else 1.0
