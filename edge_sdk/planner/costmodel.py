"""How latency, memory and size are predicted: a roofline per operator.

    time(op) = max(FLOPs / (peak[precision] × compute_eff), bytes_moved / (bandwidth × memory_eff)) + overhead

- GEMMs (linears, QKᵀ, probs·V) move their weights at the chosen precision plus their activations.
- Non-GEMM ops (LayerNorm, softmax, GELU/SiLU, embedding gathers) are bandwidth-bound: read + write activations.
- Every op pays a per-op dispatch overhead. One ModelSpec entry stands for ≈ GRAPH_OPS_PER_SPEC_OP graph nodes
  (reshapes, transposes, adds around it), so the overhead counts that many dispatches.
- Dynamic int8 adds a quantize step (read fp32, write int8) in front of every GEMM.
- Memory = weights at the precision + peak activations + runtime overhead (+ KV cache for decoders).
- Decoders are costed per generated token at a context of `seq_len` (weights and KV cache read once per token);
  encoders and ViTs per forward pass over `seq_len` tokens.
- Parallel layouts: tensor parallel divides GEMM work and weights by tp and adds two all-reduces per layer;
  pipeline parallel splits the layer stack into stages balanced by predicted time and adds an activation hand-off
  per stage boundary. Communication uses the profile's interconnect bandwidth.

Why this file is long: block_costs and predict are one roofline over every layer kind, precision, unit and
parallel layout, and their cases read best side by side; what can stand alone already does (fusion.py,
gemm_table.py, stages.py, generation.py).

Kernel fusion (TensorRT, QNN, CoreML, OpenVINO, onnxruntime-genai's decoder graphs): which op sequences become one
kernel lives in fusion.py.
ONNX Runtime's CPU EP runs the exported graph op by op, with more work than the ModelSpec lists (the masked softmax
chain, head transposes; see ORT_MASKED_SOFTMAX_PASSES); a calibrated runtime reads linear layers off its measured
GEMM table (gemm_table.py), plus each layer's weights read cold from DRAM.

Efficiency factors: per unit kind below, documented guesses. The CPU factor is fitted to this project's own MiniLM
runs on its 2-vCPU VM (`benchmarks/build_speed.py --threads 1 2`, 2026-11); the accelerator factors are unverified
starting derates with no public measurement behind them (the nearest public data, NonGEMM Bench, Karami et al.,
arXiv 2404.11788, only shows non-GEMM ops taking 11.3-73.6 % of latency). A profile's compute unit may override
them; `calibrate` will replace them with measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schemas.modelspec import ModelSpec
from ..schemas.passes import ExportGenaiConfig
from ..schemas.profile import ComputeUnit, DeviceProfile, Efficiency, Runtime
from .gemm_table import measured_gemm_s
from .fusion import FUSED_GRAPH_OPS_PER_KERNEL, FUSED_SEQUENCES, GENAI_PER_CALL_NODES, fusion_table, fused_runs
from .stages import balance_stages

DEFAULT_EFFICIENCY: dict[str, Efficiency] = {
    # CPU: ORT/XNNPACK GEMMs reach ~40-50 % of AVX2 FMA peak on MiniLM
    # (31-36 ms for 2.9 GFLOP, measured with benchmarks/build_speed.py).
    "cpu": Efficiency(compute=0.45, memory=0.7, per_op_overhead_us=5),
    # GPU: batch-1 transformer encoders reach 20-35 % of dense tensor peak (an unverified estimate; cf. NonGEMM
    # Bench, arXiv 2404.11788); kernel launch ~8 µs.
    "gpu": Efficiency(compute=0.3, memory=0.7, per_op_overhead_us=8),
    "npu": Efficiency(compute=0.25, memory=0.6, per_op_overhead_us=15),
    "tpu": Efficiency(compute=0.25, memory=0.5, per_op_overhead_us=20),
    "dsp": Efficiency(compute=0.25, memory=0.6, per_op_overhead_us=15),
    "dla": Efficiency(compute=0.2, memory=0.5, per_op_overhead_us=30),
}
GRAPH_OPS_PER_SPEC_OP = 2.5
# Large GEMMs (batch ≥ 8 on GPUs) run closer to peak (40-60 %, an unverified estimate).
BATCHED_GPU_COMPUTE_BONUS = 1.6
COMM_EFFICIENCY = 0.7
COMM_LATENCY_US = 10.0

# Resident memory of the runtime itself (context, kernels, arenas), MB.
RUNTIME_OVERHEAD_MB: dict[str, float] = {
    "cpu": 40.0, "gpu": 450.0, "npu": 60.0, "tpu": 20.0, "dsp": 60.0, "dla": 120.0,
}

ATTN_KINDS = frozenset({"attention_qkv", "attention_scores", "softmax", "attention_context", "attention_out"})
FFN_KINDS = frozenset({"ffn_up", "ffn_down", "activation"})
SEQ_QUADRATIC = frozenset({"attention_scores", "softmax", "attention_context"})

# Bytes per weight element (int4 weight-only depends on the unit's float type: element_bytes).
WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8_dynamic": 1.0, "int8_static": 1.0}
# Which peak a precision computes at (int4 weight-only dequantizes and computes in float).
COMPUTE_PRECISION = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp8": "fp8", "int8_dynamic": "int8",
                     "int8_static": "int8", "int4_weight_only": None}


# Graph nodes dispatched per ModelSpec op: unfused runtimes run reshapes/transposes/adds around every op.
# (Documented guesses; calibration replaces them.) Fusing runtimes: see FUSED_SEQUENCES.
GRAPH_OPS_BY_RUNTIME = {"CUDAExecutionProvider": 1.5}


# int4 weight-only GEMMs dequantize inside the kernel: slower than plain float GEMMs when compute-bound.
INT4_WEIGHT_ONLY_COMPUTE_FACTOR = 0.7
# onnxruntime-genai's builder writes int4 and int8 linear layers alike as MatMulNBits (accuracy_level 4: int8 compute
# inside the kernel), so a genai decoder's prompt is read off the calibrated MatMulNBits table (calibration/suite.py
# NBITS_KERNEL) at either width: measured on 2 Zen 5 vCPUs at 8-128 tokens, the 8-bit kernel took 0.8-1.2x the 4-bit
# one's time, while onnxruntime's MatMulInteger (the encoders' dynamic int8 table) ran 2.4-3.4x faster than either.
GENAI_GEMM_TABLE = {"int8_dynamic": "int4_weight_only"}

# ONNX Runtime running edge-sdk's exported graph op by op (no fusing compiler): what the graph does beyond the
# ModelSpec's ops, read off the exported graph and onnxruntime's profiler (`bench --profile-ops`):
# - a masked encoder (an `attention_mask` input) runs Add(mask), Softmax, IsNaN and Where (the exporter's guard
#   against fully masked rows) over every heads × seq² score tensor: four passes where the ModelSpec has one
#   softmax; static int8 adds a Dequantize of the scores and a Quantize of the probabilities;
# - Q, K and V are reshaped and transposed to heads, and the context transposed back: one read+write each;
# - dynamic int8 leaves the activation × activation MatMuls (QKᵀ, PV) in float: no quantize step, float peak.
ORT_MASKED_SOFTMAX_PASSES = 4
ORT_STATIC_SOFTMAX_QDQ_PASSES = 2
ORT_TRANSPOSED_KINDS = frozenset({"attention_qkv", "attention_context"})
ORT_FLOAT_ATTENTION_PRECISIONS = frozenset({"int8_dynamic"})
# OpenVINO's int8 of an IR edge-sdk converts from PyTorch: NNCF's transformer preset quantizes the linear layers
# only (MiniLM's IR: 36 FakeQuantize on its 36 MatMuls), and the converter makes attention one
# ScaledDotProductAttention op per layer, which the CPU plugin runs in float: its heads × seq² work runs at the float
# peak. Published OpenVINO results run other IRs (Open Model Zoo, PaddleNLP: attention as separate MatMuls, which
# their int8 quantizes), so published fits cost them with `edge_sdk_ir=False` (costed in float, the leave-one-out
# error of those fits went from 52/56 within 1.5x to 49/56).
OPENVINO_FLOAT_ATTENTION_PRECISIONS = frozenset({"int8_static"})


def runs_exported_graph(runtime: Runtime | None, fuse: bool = True, spec: ModelSpec | None = None) -> bool:
    """onnxruntime executing the exported ONNX graph node by node (its CPU EP; not the TensorRT/QNN/... EPs,
    which compile and fuse it, nor onnxruntime-genai's already fused decoder graph)."""
    return runtime is not None and runtime.name == "onnxruntime" and (not fuse or fusion_table(runtime, spec) is None)


def efficiency(profile: DeviceProfile, unit: ComputeUnit, runtime: Runtime | None = None,
               precision: str | None = None) -> Efficiency:
    """Runtime override for the precision, else the unit's, else the default for the unit kind."""
    if runtime is not None and precision is not None:
        if precision in runtime.efficiency:  # one recipe (int8_dynamic, int8_static), e.g. from `calibrate`
            return runtime.efficiency[precision]
        token = {"int8_dynamic": "int8", "int8_static": "int8", "int4_weight_only": "int4"}.get(precision, precision)
        if token in runtime.efficiency:
            return runtime.efficiency[token]
    return unit.efficiency or DEFAULT_EFFICIENCY[unit.kind]


def bandwidth_gbps(profile: DeviceProfile, unit: ComputeUnit) -> float:
    return unit.memory_bandwidth_gbps or profile.memory_bandwidth_gbps


def graph_ops_per_spec_op(runtime: Runtime | None, fuse: bool = True, spec: ModelSpec | None = None) -> float:
    """Graph nodes dispatched per ModelSpec op (per fused kernel where the runtime fuses)."""
    if runtime is None:
        return GRAPH_OPS_PER_SPEC_OP
    table = fusion_table(runtime, spec) if fuse else None
    if table in FUSED_GRAPH_OPS_PER_KERNEL:
        return FUSED_GRAPH_OPS_PER_KERNEL[table]
    return GRAPH_OPS_BY_RUNTIME.get(runtime.provider, GRAPH_OPS_BY_RUNTIME.get(runtime.name, GRAPH_OPS_PER_SPEC_OP))


def compute_peak_tops(unit: ComputeUnit, precision: str, sparse_24: bool) -> tuple[float, str]:
    """The peak used for GEMMs and the precision it is for. int4 weight-only computes at fp16 (or fp32)."""
    want = COMPUTE_PRECISION[precision]
    order = [want] if want else []
    order += ["fp16", "bf16", "fp32"] if want in (None, "fp16", "bf16") else ["fp32"]
    table = unit.peak_tops_sparse if sparse_24 and unit.peak_tops_sparse else unit.peak_tops_dense
    for p in order:
        if p and p in table:
            return table[p], p
    for p in order:  # sparse table lacks it: fall back to dense
        if p and p in unit.peak_tops_dense:
            return unit.peak_tops_dense[p], p
    # Unit with no published peak at all: use its best known figure.
    best = max(unit.peak_tops_dense.items(), key=lambda kv: kv[1], default=("fp32", 0.01))
    return best[1], best[0]


def gemm_peak_tops(unit: ComputeUnit, precision: str, sparse_24: bool = False) -> float:
    """The peak a GEMM at `precision` is costed against (int4 weight-only: its compute precision's, less what the
    in-kernel dequantization costs). calibration/fit.py fits compute efficiencies against the same number."""
    peak, _ = compute_peak_tops(unit, precision, sparse_24)
    return peak * (INT4_WEIGHT_ONLY_COMPUTE_FACTOR if precision == "int4_weight_only" else 1.0)


def activation_bytes_per_elem(precision: str, unit: ComputeUnit) -> float:
    if precision in ("fp16", "bf16", "fp8"):
        return 2.0
    if precision == "int8_static" and unit.kind in ("npu", "tpu", "dsp", "dla"):
        return 1.0
    if precision in ("int4_weight_only", "int8_static") and unit.kind == "gpu":
        return 2.0
    return 4.0


@dataclass
class GroupCost:
    """Summed roofline time (s), weight bytes and op count of the ops in a group, before pruning.
    For block groups the sums are over all blocks; `per_block` divides them by the block count."""

    time_s: float = 0.0
    ops: float = 0
    weight_bytes: float = 0.0
    gemm_weight_bytes: float = 0.0
    peak_act_bytes: float = 0.0
    compute_s: float = 0.0
    memory_s: float = 0.0

    def add(self, t_c: float, t_m: float, wbytes: float, gemm: bool, act: float, ops: float = 1.0) -> None:
        self.time_s += max(t_c, t_m)
        self.compute_s += t_c
        self.memory_s += t_m
        self.ops += ops
        self.weight_bytes += wbytes
        if gemm:
            self.gemm_weight_bytes += wbytes
        self.peak_act_bytes = max(self.peak_act_bytes, act)

    def per_block(self, n: int) -> "GroupCost":
        if n <= 1:
            return self
        return GroupCost(self.time_s / n, self.ops / n, self.weight_bytes / n, self.gemm_weight_bytes / n,
                         self.peak_act_bytes, self.compute_s / n, self.memory_s / n)


@dataclass
class BlockCosts:
    """Per-block (one transformer layer) and outside-block costs for one (runtime, precision) pair."""

    attn: GroupCost = field(default_factory=GroupCost)
    ffn: GroupCost = field(default_factory=GroupCost)
    other: GroupCost = field(default_factory=GroupCost)
    outside: GroupCost = field(default_factory=GroupCost)
    num_blocks: int = 0
    overhead_s: float = 0.0
    run_s: float = 0.0  # one inference call's fixed cost (Efficiency.per_run_overhead_us)
    kv_bytes_per_block: float = 0.0  # read per decode step
    params_outside: int = 0
    params_block: int = 0
    tp_allreduce_bytes: float = 0.0  # per block, per all-reduce
    layer_s: dict[str, float] = field(default_factory=dict)  # ModelSpec layer name -> roofline time (no overhead)
    layer_kernels: dict[str, float] = field(default_factory=dict)  # layer -> its share of a kernel (1/n when fused)
    fused: list[str] = field(default_factory=list)  # the fusions applied, for explanations

    def weight_bytes(self, head_keep: float = 1.0, ffn_keep: float = 1.0, n_blocks: int | None = None,
                     sparse_24: bool = False) -> float:
        """Weight bytes after pruning. 2:4 sparse GEMM weights are stored compressed (≈ 0.5625×)."""
        n = self.num_blocks if n_blocks is None else n_blocks

        def g(c: GroupCost, keep: float) -> float:
            gemm = c.gemm_weight_bytes * (0.5625 if sparse_24 else 1.0)
            return (c.weight_bytes - c.gemm_weight_bytes + gemm) * keep

        return n * (g(self.attn, head_keep) + g(self.ffn, ffn_keep) + g(self.other, 1.0)) + g(self.outside, 1.0)


@dataclass(slots=True)
class CostEstimate:
    latency_ms: float
    throughput_per_s: float
    weights_mb: float
    activations_mb: float
    kv_cache_mb: float
    overhead_mb: float
    per_device_mb: list[float]
    size_mb: float
    compute_ms: float
    memory_ms: float
    overhead_ms: float
    comm_ms: float
    stage_ms: list[float]
    stages: list[tuple[int, int]]

    @property
    def total_mb(self) -> float:
        return max(self.per_device_mb) if self.per_device_mb else 0.0

    @property
    def bound(self) -> str:
        parts = {"compute": self.compute_ms, "memory": self.memory_ms, "overhead": self.overhead_ms}
        top = max(parts, key=parts.get)
        return top if parts[top] >= 0.6 * sum(parts.values()) else "mixed"


def block_costs(spec: ModelSpec, profile: DeviceProfile, unit: ComputeUnit, precision: str, *, sparse_24: bool = False,
                decode: bool = False, float_kinds: frozenset[str] = frozenset(),
                runtime: Runtime | None = None, batch_scale: float = 1.0, fuse: bool = True,
                edge_sdk_ir: bool = True) -> BlockCosts:
    """Roofline every op of the ModelSpec once; blocks are summed per group so pruning is arithmetic later.

    `float_kinds`: op kinds kept in float by a mixed-precision recipe (static int8 on ORT CPU / TensorRT keeps the
    FFN down-projections in float because GELU outliers wreck their int8 inputs: cosine 0.41 → 0.99 on MiniLM).
    `batch_scale`: cost one data-parallel replica, which sees batch/dp: FLOPs and activations shrink, but every
    replica still reads all of its weights.
    `fuse`: apply the runtime's FUSED_SEQUENCES (False: cost every op as its own kernel, for comparison).
    `edge_sdk_ir`: the artifact is one edge-sdk builds (False for published results: other tools' graphs)."""
    eff = efficiency(profile, unit, runtime, precision)
    peak = gemm_peak_tops(unit, precision, sparse_24)
    float_precision = "fp32" if unit.kind == "cpu" else "fp16"
    float_peak, _ = compute_peak_tops(unit, float_precision, sparse_24)
    flops_per_s = peak * 1e12 * eff.compute
    float_flops_per_s = float_peak * 1e12 * eff.compute
    if unit.kind == "gpu" and spec.batch >= 8 and not decode:
        flops_per_s = min(peak * 1e12, flops_per_s * BATCHED_GPU_COMPUTE_BONUS)
        float_flops_per_s = min(float_peak * 1e12, float_flops_per_s * BATCHED_GPU_COMPUTE_BONUS)
    raw_bytes_per_s = bandwidth_gbps(profile, unit) * 1e9
    bytes_per_s = raw_bytes_per_s * eff.memory
    abytes = activation_bytes_per_elem(precision, unit) / 4.0  # ModelSpec activation bytes are fp32
    seq = max(spec.seq_len, 1)
    ort_graph = runs_exported_graph(runtime, fuse, spec) and not decode
    table = fusion_table(runtime, spec) if fuse else None
    # DynamicQuantizeLinear in front of every GEMM (onnxruntime's dynamic int8); genai's MatMulNBits quantizes its
    # input inside the kernel
    quantize_node = precision == "int8_dynamic" and table != "genai"
    masked = any(i.name == "attention_mask" for i in spec.inputs)
    softmax_passes = (ORT_MASKED_SOFTMAX_PASSES if masked else 1) + \
        (ORT_STATIC_SOFTMAX_QDQ_PASSES if precision == "int8_static" else 0)
    bc = BlockCosts()
    blocks = {l.block for l in spec.layers if l.block is not None}
    bc.num_blocks = len(blocks)
    rows: list[tuple] = []  # (layer, t_c, t_m, params_bytes, act)
    for layer in spec.layers:
        flops = float(layer.flops) * batch_scale
        act = float(layer.activation_bytes) * abytes * batch_scale
        if decode:  # one new token against a context of seq_len
            flops /= seq
            act /= seq
        float_attention = layer.kind in ("attention_scores", "attention_context") and (
            (ort_graph and precision in ORT_FLOAT_ATTENTION_PRECISIONS)
            or (edge_sdk_ir and runtime is not None and runtime.name == "openvino"
                and precision in OPENVINO_FLOAT_ATTENTION_PRECISIONS))
        in_float = layer.kind in float_kinds or float_attention
        params_bytes = layer.params * element_bytes(layer, float_precision if in_float else precision, unit)
        extra_bytes = 2 * act if ort_graph and layer.kind in ORT_TRANSPOSED_KINDS else 0.0
        if layer.kind == "embedding":
            t_c, t_m = 0.0, 2 * act / bytes_per_s  # a gather reads only the rows it needs
        elif layer.gemm:
            moved = params_bytes * (0.5625 if sparse_24 else 1.0) + 2 * act + extra_bytes
            if quantize_node and not float_attention:
                moved += act * 1.25  # DynamicQuantizeLinear: read fp32 input, write int8
            t_c = flops / (float_flops_per_s if in_float else flops_per_s)
            t_m = moved / bytes_per_s
            gemm_key = float_precision if in_float else GENAI_GEMM_TABLE.get(precision, precision) \
                if table == "genai" else precision
            measured = _measured_gemm(runtime, gemm_key, layer, batch_scale, decode or sparse_24)
            if measured is not None:  # a calibrated runtime: the measured kernel time replaces the roofline
                # The table was timed with one weight matrix, hot in cache; in a model every linear layer reads
                # its own weights from DRAM (a BERT-base layer: 28 MB in fp32), at the measured bandwidth.
                cold = params_bytes * (0.5625 if sparse_24 else 1.0) / raw_bytes_per_s
                t_c, t_m = measured + cold + extra_bytes / bytes_per_s, 0.0
        elif layer.kind == "softmax" and ort_graph:  # every pass reads and writes the heads × seq² scores
            t_c, t_m = 0.0, (2 * act * softmax_passes + params_bytes) / bytes_per_s
        else:  # bandwidth-bound: read + write activations (and the few norm weights)
            t_c, t_m = 0.0, (2 * act + params_bytes) / bytes_per_s
        rows.append((layer, t_c, t_m, params_bytes, act))
    for members, saved_bytes, what in fused_runs(rows, FUSED_SEQUENCES.get(table or "", ())):
        if what not in bc.fused:
            bc.fused.append(what)
        _add_fused(bc, members, saved_bytes / bytes_per_s)
    for layer, t_c, t_m, params_bytes, act in rows:
        if layer.name in bc.layer_kernels:  # costed with its fused group
            continue
        if layer.block is None:
            group = bc.outside
            bc.params_outside += layer.params
        elif layer.kind in ATTN_KINDS:
            group = bc.attn
            bc.params_block += layer.params
        elif layer.kind in FFN_KINDS:
            group = bc.ffn
            bc.params_block += layer.params
        else:
            group = bc.other
            bc.params_block += layer.params
        group.add(t_c, t_m, params_bytes, layer.gemm and layer.kind != "embedding", act)
        bc.layer_s[layer.name] = max(t_c, t_m)
        bc.layer_kernels[layer.name] = 1.0
        if layer.kind == "attention_out" and layer.block is not None:
            bc.tp_allreduce_bytes = act
    # Blocks are summed over all layers; pruning and layer dropping scale one average block.
    bc.attn, bc.ffn, bc.other = (g.per_block(bc.num_blocks) for g in (bc.attn, bc.ffn, bc.other))
    bc.overhead_s = eff.per_op_overhead_us * 1e-6 * graph_ops_per_spec_op(runtime, fuse, spec)
    bc.run_s = eff.per_run_overhead_us * 1e-6
    if table == "genai":  # its mask bookkeeping nodes run once per call
        bc.run_s += GENAI_PER_CALL_NODES * eff.per_op_overhead_us * 1e-6
    elif quantize_node:
        bc.overhead_s *= 1.3  # the extra quantize node per GEMM
    elif precision == "int8_static" and unit.kind == "cpu":
        bc.overhead_s *= 1.6  # QDQ pairs around every quantized op; measured slower than dynamic on ORT CPU
    return bc


def _add_fused(bc: BlockCosts, members: list[tuple], saved_s: float) -> None:
    """One kernel for `members`: summed compute, summed traffic less what stays on chip (never below the weights
    read), one dispatch."""
    first = members[0][0]
    t_c = sum(r[1] for r in members)
    t_m_sum = sum(r[2] for r in members)
    t_m = max(t_m_sum - saved_s, 0.0)
    wbytes = sum(r[3] for r in members)
    if first.block is None:
        group = bc.outside
        bc.params_outside += sum(r[0].params for r in members)
    else:
        group = bc.attn if first.kind in ATTN_KINDS else bc.ffn if first.kind in FFN_KINDS else bc.other
        bc.params_block += sum(r[0].params for r in members)
    gemm_w = sum(r[3] for r in members if r[0].gemm and r[0].kind != "embedding")
    group.add(t_c, t_m, 0.0, False, max(r[4] for r in members), ops=1.0)
    group.weight_bytes += wbytes
    group.gemm_weight_bytes += gemm_w
    total = max(t_c, t_m)
    unfused = [max(r[1], r[2]) for r in members]
    norm = sum(unfused) or 1.0
    for r, u in zip(members, unfused):
        bc.layer_s[r[0].name] = total * (u / norm if sum(unfused) else 1.0 / len(members))
        bc.layer_kernels[r[0].name] = 1.0 / len(members)
        if r[0].kind == "attention_out" and r[0].block is not None:
            bc.tp_allreduce_bytes = r[4]


def _measured_gemm(runtime: Runtime | None, precision: str, layer, batch_scale: float, skip: bool) -> float | None:
    """The calibrated time of a linear layer (planner/gemm_table.py), or None to use the roofline."""
    if skip or runtime is None or layer.kind == "embedding" or not (layer.in_features and layer.out_features
                                                                    and layer.tokens):
        return None
    table = runtime.gemm_ms.get(precision)
    return measured_gemm_s(table, layer.tokens * batch_scale, layer.in_features, layer.out_features) if table \
        else None


def layer_times_ms(spec: ModelSpec, profile: DeviceProfile, runtime: Runtime, unit: ComputeUnit,
                   precision: str) -> dict[str, float]:
    """Predicted time of every ModelSpec layer (roofline + its share of per-op dispatch overhead), in ms; their sum
    is the unpruned single-device latency `predict` gives. What `report` puts next to per-op profiles."""
    bc = block_costs(spec, profile, unit, precision, runtime=runtime)
    return {name: (t + bc.overhead_s * bc.layer_kernels.get(name, 1.0)) * 1e3 for name, t in bc.layer_s.items()}


def element_bytes(layer, precision: str, unit: ComputeUnit) -> float:
    """Bytes per parameter of one layer at a precision. Quantizers touch GEMM weights and embedding tables
    (ORT's dynamic int8 quantizes Gather too); norms stay float; int4 weight-only (MatMulNBits) touches only
    GEMM weights."""
    if precision == "fp32":
        return 4.0
    float_bytes = 2.0 if unit.kind != "cpu" else 4.0
    if precision in ("fp16", "bf16"):
        return 2.0
    if layer.kind == "norm":
        return float_bytes
    if precision == "int4_weight_only":  # scales in the model's float type (the builder writes fp32 scales for a
        # CPU model: a built SmolLM-135M's are FLOAT, 0.625 bytes per weight; fp16 on a GPU)
        return int4_weight_bytes(float_bytes) if layer.gemm and layer.kind != "embedding" else float_bytes
    return WEIGHT_BYTES[precision]


#: int4 weight-only (MatMulNBits): weights per scale, as the decoder build writes them (ExportGenaiConfig's default)
INT4_BLOCK = ExportGenaiConfig.model_fields["block_size"].default


def int4_weight_bytes(scale_bytes: float) -> float:
    """Bytes per int4 weight-only weight: 4 bits and one scale of `scale_bytes` per INT4_BLOCK weights."""
    return 0.5 + scale_bytes / INT4_BLOCK


def predict(spec: ModelSpec, profile: DeviceProfile, runtime: Runtime, unit: ComputeUnit, precision: str, costs: BlockCosts,
            *, head_ratio: float = 0.0, ffn_ratio: float = 0.0, drop_layers: int = 0, tp: int = 1, pp: int = 1,
            dp: int = 1, decode: bool = False, kv_bytes_per_elem: float = 2.0,
            sparse_24: bool = False) -> CostEstimate:
    heads = spec.transformer.num_heads if spec.transformer else 0
    head_keep = (heads - round(heads * head_ratio)) / heads if heads else 1.0
    ffn_keep = 1.0 - ffn_ratio
    n_blocks = max(costs.num_blocks - drop_layers, 0)
    ovh = costs.overhead_s
    # `costs` describe one replica (block_costs(batch_scale=1/dp)); only the KV cache and the pipeline hand-off,
    # computed here from the full batch, need the replica's share.
    per_rep_batch_scale = 1.0 / dp
    attn_t = costs.attn.time_s * head_keep
    ffn_t = costs.ffn.time_s * ffn_keep
    # Tensor parallel shards GEMMs; norms are replicated.
    block_s = ((attn_t + ffn_t) / tp + costs.other.time_s) + \
        ovh * (costs.attn.ops + costs.ffn.ops + costs.other.ops)
    outside_s = costs.outside.time_s / (tp if tp > 1 else 1) + ovh * costs.outside.ops + costs.run_s
    kv_mb = 0.0
    if decode and spec.transformer is not None:
        t = spec.transformer
        kv_block_bytes = 2 * t.num_kv_heads * t.head_dim * spec.seq_len * spec.batch * kv_bytes_per_elem
        kv_mb = kv_block_bytes * n_blocks / 1e6
        eff = efficiency(profile, unit, runtime, precision)
        block_s += kv_block_bytes * per_rep_batch_scale / tp / (bandwidth_gbps(profile, unit) * 1e9 * eff.memory)
    comm_s = 0.0
    link = (profile.interconnect_bandwidth_gbps or 16.0) * 1e9 * COMM_EFFICIENCY
    if tp > 1:
        ar_bytes = costs.tp_allreduce_bytes  # already per replica, per token for decoders, at the act precision
        per_ar = 2 * (tp - 1) / tp * ar_bytes / link + COMM_LATENCY_US * 1e-6
        comm_s += 2 * per_ar * n_blocks
        block_s += 2 * per_ar
    stages = balance_stages(block_s, max(n_blocks, 1), pp, outside_s / 2, outside_s / 2)
    stage_s = [(b - a + 1) * block_s for a, b in stages]
    stage_s[0] += outside_s / 2
    stage_s[-1] += outside_s / 2
    handoff = 0.0
    if pp > 1:
        hid = spec.transformer.hidden_size if spec.transformer else 0
        toks = spec.batch * (1 if decode else spec.seq_len) * per_rep_batch_scale
        handoff = toks * hid * activation_bytes_per_elem(precision, unit) / link + COMM_LATENCY_US * 1e-6
        comm_s += handoff * (pp - 1)
    latency_s = sum(stage_s) + handoff * (pp - 1)
    rep_batch = spec.batch / dp
    if pp > 1 and rep_batch >= pp:
        per_rep_tp = rep_batch / (max(stage_s) + handoff)
    else:
        per_rep_tp = rep_batch / latency_s if latency_s > 0 else 0.0
    throughput = per_rep_tp * dp

    # Memory
    w_bytes = costs.weight_bytes(head_keep, ffn_keep, n_blocks, sparse_24)
    weights_mb = w_bytes / 1e6
    peak_act = max(costs.attn.peak_act_bytes * head_keep, costs.ffn.peak_act_bytes * ffn_keep,
                   costs.other.peak_act_bytes, costs.outside.peak_act_bytes)
    activations_mb = 3 * peak_act / 1e6  # in + out + one live residual, of one replica
    overhead_mb = RUNTIME_OVERHEAD_MB[unit.kind]
    shards = tp * pp
    per_dev = weights_mb / shards + kv_mb * per_rep_batch_scale / shards + activations_mb / tp + overhead_mb
    per_device_mb = [per_dev] * (shards * dp)
    size_mb = w_bytes / 1e6
    eff_total = costs.attn.compute_s * head_keep + costs.ffn.compute_s * ffn_keep + costs.other.compute_s
    mem_total = costs.attn.memory_s * head_keep + costs.ffn.memory_s * ffn_keep + costs.other.memory_s
    n_ops = costs.attn.ops + costs.ffn.ops + costs.other.ops
    return CostEstimate(
        latency_ms=latency_s * 1e3, throughput_per_s=throughput, weights_mb=weights_mb,
        activations_mb=activations_mb, kv_cache_mb=kv_mb, overhead_mb=overhead_mb, per_device_mb=per_device_mb,
        size_mb=size_mb, compute_ms=(eff_total * n_blocks + costs.outside.compute_s) * 1e3 / tp,
        memory_ms=(mem_total * n_blocks + costs.outside.memory_s) * 1e3 / tp,
        overhead_ms=ovh * (n_ops * n_blocks + costs.outside.ops) * 1e3, comm_ms=comm_s * 1e3,
        stage_ms=[s * 1e3 for s in stage_s], stages=stages)
