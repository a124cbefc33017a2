"""Which consecutive ops does a runtime run as one kernel? The fusion table the cost model applies.

Kernel fusion (runtimes that compile the graph: TensorRT and ONNX Runtime's TensorRT EP, QNN and the QNN EP /
LiteRT QNN delegate, CoreML, OpenVINO): `FUSED_SEQUENCES` lists, per runtime, which consecutive ModelSpec ops of one
block become one kernel. A fused group pays the per-op dispatch overhead once, and a *chain* group does not write its
intermediate activations to memory and read them back (the attention scores/probabilities of QKᵀ-softmax-PV are the
big ones: B·heads·S² elements per layer); a *horizontal* group (Q, K and V projections as one GEMM) reads its shared
input once. Sources:
- TensorRT: the Layer Fusion Catalog (https://docs.nvidia.com/deeplearning/tensorrt/latest/performance/fusion-catalog.html)
  and Fused Attention (https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/transformers-fused-attention.html):
  BMM1-softmax-BMM2 become one fused MHA kernel, GEMM epilogues take bias + activation; NVIDIA's BERT demo
  (github.com/NVIDIA/TensorRT, demo/BERT) runs a layer as QKV GEMM, QKVToContext (fused MHA), GEMM, SkipLayerNorm,
  GEMM + bias-GELU, GEMM, SkipLayerNorm, and embeddings + LayerNorm as one EmbLayerNorm kernel. A TensorRT kernel is
  one dispatch (reshapes, transposes and residual adds are absorbed), so fused runtimes count
  FUSED_GRAPH_OPS_PER_KERNEL dispatches per kernel instead of GRAPH_OPS_PER_SPEC_OP per op.
- QNN (HTP): Qualcomm publishes no fusion list. Qualcomm AI Hub's layer counts (quic/ai-hub-models perf.yaml: 417 QNN
  DLC layers for BERT-base MLM = 2.7 per ModelSpec op, 218 for DistilBERT = 2.8) show little graph-level fusion, so QNN
  keeps GRAPH_OPS_PER_SPEC_OP dispatches; the attention chain and GEMM + activation are assumed (unverified) to keep
  their intermediates in the HTP's on-chip memory.
- CoreML / OpenVINO: Apple's "Deploying Transformers on the Apple Neural Engine" (fused attention) and OpenVINO's
  transformation list (MHA / GELU / LayerNorm fusions) — same groups as TensorRT, not checked against measurements.
- onnxruntime-genai: decoders for onnxruntime are written by its model builder (passes/export_genai.py), whose graph
  is already fused; onnxruntime runs it node by node. Read off the graph it writes for examples/configs/tiny-llama.json
  (int4 and int8, CPU EP; the builder packs Q/K/V and puts rotary embedding inside GroupQueryAttention on the CPU and
  CUDA EPs, see onnxruntime_genai/models/builders/base.py, `use_packed_matmul` and `use_rope_in_attn`). Per layer:
  SkipSimplifiedLayerNormalization (the residual add inside), one packed QKV MatMulNBits, GroupQueryAttention
  (rotary, KV-cache append, QKᵀ-softmax-PV), o_proj, SkipSimplifiedLayerNormalization, gate and up MatMulNBits, SiLU as
  Sigmoid · Mul times the up projection (Mul), down: 11 nodes for the 9 kernels the table leaves of the ModelSpec's 13
  ops. Once per call, 6 nodes turn attention_mask into GroupQueryAttention's seqlens_k and total_sequence_length.
  MatMulNBits quantizes its input inside the kernel: no DynamicQuantizeLinear nodes.
ONNX Runtime CPU (exported encoders), LiteRT/XNNPACK and PyTorch keep the unfused model (their predictions are pinned
by measurements).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schemas.modelspec import ModelSpec
from ..schemas.profile import Runtime


@dataclass(frozen=True)
class FusedSequence:
    """Consecutive ModelSpec op kinds (within one block, or outside blocks) that a runtime runs as one kernel."""

    kinds: tuple[str, ...]
    chain: bool  # True: each op feeds the next (intermediates stay on chip); False: siblings sharing one input
    what: str


_MHA = FusedSequence(("attention_scores", "softmax", "attention_context"), True, "fused MHA (QKᵀ-softmax-PV)")
_QKV = FusedSequence(("attention_qkv", "attention_qkv", "attention_qkv"), False, "one QKV GEMM")
_GEMM_ACT = FusedSequence(("ffn_up", "activation"), True, "GEMM + bias + GELU/ReLU epilogue")
_EMB_LN = FusedSequence(("embedding", "embedding", "embedding", "norm"), True, "EmbLayerNorm")
_EMB2_LN = FusedSequence(("embedding", "embedding", "norm"), True, "EmbLayerNorm")
_PACKED_QKV = FusedSequence(("attention_qkv", "attention_qkv", "attention_qkv"), False, "one packed QKV MatMul")
_GQA = FusedSequence(("attention_scores", "softmax", "attention_context"), True,
                     "GroupQueryAttention (rotary, KV-cache append, QKᵀ-softmax-PV)")
FUSED_SEQUENCES: dict[str, tuple[FusedSequence, ...]] = {
    "tensorrt": (_QKV, _MHA, _GEMM_ACT, _EMB_LN, _EMB2_LN),
    "qnn": (_MHA, _GEMM_ACT),
    "coreml": (_QKV, _MHA, _GEMM_ACT),
    "openvino": (_QKV, _MHA, _GEMM_ACT),
    "genai": (_PACKED_QKV, _GQA),
}
# Runtime name or provider -> its fusion table (the TensorRT EP builds TensorRT engines; the QNN EP and the LiteRT
# QNN delegate hand the graph to QNN).
FUSION_TABLE_BY_RUNTIME = {"tensorrt": "tensorrt", "TensorrtExecutionProvider": "tensorrt", "qnn": "qnn",
                           "QNNExecutionProvider": "qnn", "coreml": "coreml", "CoreMLExecutionProvider": "coreml",
                           "openvino": "openvino", "OpenVINOExecutionProvider": "openvino"}
# Dispatches per fused kernel on runtimes that compile the whole graph (TensorRT: one kernel launch). QNN's HTP graph
# keeps ~2.7 nodes per op (AI Hub layer counts), so it stays at GRAPH_OPS_PER_SPEC_OP.
# onnxruntime-genai's builder graph: 11 nodes per layer for 9 costed kernels (see the module docstring).
FUSED_GRAPH_OPS_PER_KERNEL = {"tensorrt": 1.0, "coreml": 1.0, "openvino": 1.0, "genai": 11 / 9}
# Nodes of the genai builder's graph that run once per call (attention_mask -> seqlens_k, total_sequence_length).
GENAI_PER_CALL_NODES = 6


def fusion_table(runtime: Runtime | None, spec: ModelSpec | None = None) -> str | None:
    """Which FUSED_SEQUENCES table a runtime uses for a model (None: it runs the graph op by op). A decoder on an
    onnxruntime EP that runs graphs node by node runs onnxruntime-genai's builder graph: "genai"."""
    if runtime is None:
        return None
    if runtime.name == "litert" and runtime.provider != "qnn":
        return None
    table = FUSION_TABLE_BY_RUNTIME.get(runtime.provider) or FUSION_TABLE_BY_RUNTIME.get(runtime.name)
    if table is None and runtime.name == "onnxruntime" and spec is not None and spec.transformer is not None \
            and spec.transformer.family == "decoder":
        return "genai"
    return table


def fused_runs(rows: list[tuple], sequences: tuple[FusedSequence, ...]):
    """Yield (member rows, bytes not moved, description) for every run of consecutive ops (same block) that matches
    one of `sequences`. Chain: each member's output is neither written nor read back (2 × its activation bytes,
    except the last member's); horizontal: the shared input is read once instead of n times."""
    if not sequences:
        return
    i = 0
    while i < len(rows):
        for seq in sequences:
            n = len(seq.kinds)
            run = rows[i:i + n]
            if len(run) == n and all(r[0].kind == k and r[0].block == rows[i][0].block
                                     for r, k in zip(run, seq.kinds)):
                acts = [r[4] for r in run]
                saved = 2 * sum(acts[:-1]) if seq.chain else (n - 1) * acts[0]
                yield run, saved, seq.what
                i += n
                break
        else:
            i += 1
