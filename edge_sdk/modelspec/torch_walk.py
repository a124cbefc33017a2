"""Which layers does a PyTorch module have, with how many params and FLOPs each?

Every module that owns parameters directly becomes one LayerSpec with exactly those parameters (a shared tensor is
counted once, at its first owner; later users say `tied_to`), so the layer params always sum to
`sum(p.numel() for p in model.parameters())`. When the transformer structure is known, each block also gets the
weightless ops that dominate at long sequences: attention scores (QK^T), softmax, attention context (PV) and the
FFN activation. FLOP formulas: `flops.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import flops as F
from ..arch.naming import classify_linear, classify_param_holder
from ..schemas.modelspec import LayerSpec, TransformerInfo

_BLOCK_LIST_NAMES = {"layer", "layers", "h", "block", "blocks"}


@dataclass(frozen=True)
class Forward:
    """The forward pass a spec describes."""

    batch: int
    seq_len: int                  # tokens per sample (ViT: patches + CLS)
    num_patches: int | None = None
    act: str = "gelu"             # FLOP class of the FFN activation
    per_sample_head: bool = False  # classifier runs on one pooled vector per sample (sequence/image classification)

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len


def block_prefixes(model: Any) -> dict[str, int]:
    """`<stack path>.<i>` → block index, for the repeated-block stacks (ModuleLists) of a transformer.

    Stacks are found in module order (an encoder-decoder's decoder blocks continue the numbering). Nested lists
    inside a block (MoE experts, T5 sub-layers) are not stacks.
    """
    from torch import nn

    stacks: list[str] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.ModuleList) or len(mod) == 0:
            continue
        if any(name.startswith(s + ".") for s in stacks):
            continue
        leaf = name.rsplit(".", 1)[-1]
        same_class = len({type(m) for m in mod}) == 1
        if same_class and leaf in _BLOCK_LIST_NAMES and any(True for _ in mod[0].parameters()):
            stacks.append(name)
    out: dict[str, int] = {}
    idx = 0
    for s in stacks:
        for i in range(len(model.get_submodule(s))):
            out[f"{s}.{i}"] = idx
            idx += 1
    return out


def _block_of(path: str, prefixes: dict[str, int]) -> int | None:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        hit = prefixes.get(".".join(parts[:cut]))
        if hit is not None:
            return hit
    return None


def _category(mod: Any) -> str:
    from torch import nn

    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover
        Conv1D = ()  # type: ignore[assignment]
    if isinstance(mod, nn.Linear) or (Conv1D and isinstance(mod, Conv1D)):
        return "linear"
    if isinstance(mod, nn.Embedding):
        return "embedding"
    if isinstance(mod, (nn.LayerNorm, nn.GroupNorm)) or type(mod).__name__.lower().endswith("norm") \
            or "rmsnorm" in type(mod).__name__.lower():
        return "norm"
    if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return "conv"
    return "other"


def _linear_shape(mod: Any) -> tuple[int, int]:
    from torch import nn

    if isinstance(mod, nn.Linear):
        return mod.in_features, mod.out_features
    w = mod.weight  # transformers Conv1D stores (in, out)
    return int(w.shape[0]), int(w.shape[1])


def _heads_for(kind: str, path: str, info: TransformerInfo | None) -> int | None:
    if info is None or kind not in ("attention_qkv", "attention_out"):
        return None
    leaf = path.rsplit(".", 1)[-1].lower()
    if kind == "attention_qkv" and leaf in ("key", "value", "k_proj", "v_proj", "k", "v", "k_lin", "v_lin",
                                            "w_k", "w_v"):
        return info.num_kv_heads
    return info.num_heads


def module_layers(model: Any, fwd: Forward, info: TransformerInfo | None) -> tuple[list[LayerSpec], list[str]]:
    """One LayerSpec per parameter-owning module, in registration order, with exact params."""
    prefixes = block_prefixes(model)
    owner: dict[int, str] = {}
    layers: list[LayerSpec] = []
    unmodelled: list[str] = []
    for path, mod in model.named_modules():
        direct = list(mod.named_parameters(recurse=False))
        if not direct:
            continue
        params, tied_to = 0, None
        for _, p in direct:
            if id(p) in owner:
                tied_to = tied_to or owner[id(p)]
            else:
                owner[id(p)] = path or type(model).__name__
                params += p.numel()
        block = _block_of(path, prefixes)
        cat = _category(mod)
        base: dict[str, Any] = {"name": path or type(model).__name__, "module": path or None, "block": block,
                                "params": params, "weight_bytes_fp32": params * F.FP32, "tied_to": tied_to}
        if cat == "linear":
            kind = classify_linear(path, in_block=block is not None)
            in_f, out_f = _linear_shape(mod)
            tokens = fwd.tokens
            if kind == "pooler" or (kind == "classifier" and fwd.per_sample_head):
                tokens = fwd.batch
            layers.append(LayerSpec(**base, kind=kind, gemm=True, in_features=in_f, out_features=out_f,
                                    tokens=tokens, heads=_heads_for(kind, path, info),
                                    **F.linear(tokens, in_f, out_f)))
        elif cat == "embedding":
            layers.append(LayerSpec(**base, kind="embedding", in_features=mod.num_embeddings,
                                    out_features=mod.embedding_dim, tokens=fwd.tokens,
                                    **F.embedding(fwd.tokens, mod.embedding_dim)))
        elif cat == "norm":
            width = int(direct[0][1].shape[-1]) if direct[0][1].dim() else 1
            rms = "rms" in type(mod).__name__.lower() or not any(n == "bias" for n, _ in direct)
            layers.append(LayerSpec(**base, kind="norm", in_features=width, out_features=width, tokens=fwd.tokens,
                                    **F.norm(fwd.tokens, width, rms=rms)))
        elif cat == "conv":
            in_per = int(mod.weight[0].numel())
            out_ch = int(mod.out_channels)
            if fwd.num_patches and ("patch" in path.lower() or info is not None and info.family == "vision"):
                layers.append(LayerSpec(**base, kind="patch_embed", gemm=True, in_features=in_per,
                                        out_features=out_ch, tokens=fwd.batch * fwd.num_patches,
                                        **F.patch_conv(fwd.batch, fwd.num_patches, in_per, out_ch)))
            else:
                unmodelled.append(path)
                layers.append(LayerSpec(**base, kind="other", gemm=True, in_features=in_per, out_features=out_ch))
        else:
            kind = classify_param_holder(path)
            extra: dict[str, Any] = {}
            if kind == "embedding" and info is not None:
                extra = F.embedding(fwd.tokens, info.hidden_size)
                extra["input_bytes"] = 0
            elif kind != "embedding" and any(p.dim() >= 2 for _, p in direct):
                unmodelled.append(path or type(model).__name__)  # a weight matrix we cannot cost (biases: no FLOPs)
            layers.append(LayerSpec(**base, kind=kind, **extra))
    notes = []
    if unmodelled:
        shown = ", ".join(unmodelled[:3]) + (" ..." if len(unmodelled) > 3 else "")
        notes.append(f"{len(unmodelled)} parameter-owning module(s) without a FLOP model ({shown}): "
                     f"their params are counted, their FLOPs are not")
    return layers, notes


def _parent(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def add_block_ops(layers: list[LayerSpec], fwd: Forward, info: TransformerInfo) -> list[LayerSpec]:
    """Insert the weightless per-block ops (scores, softmax, context, FFN activation) and order each block the way
    it executes (pre-norm for decoders and ViT, post-norm for BERT-style encoders)."""
    b, s, H, KV, d = fwd.batch, fwd.seq_len, info.num_heads, info.num_kv_heads, info.head_dim
    out: list[LayerSpec] = []
    by_block: dict[int, list[LayerSpec]] = {}
    order: list[tuple[str, Any]] = []  # ("layer", LayerSpec) or ("block", idx), keeps non-block layers in place
    for layer in layers:
        if layer.block is None:
            order.append(("layer", layer))
        else:
            if layer.block not in by_block:
                order.append(("block", layer.block))
            by_block.setdefault(layer.block, []).append(layer)
    for what, item in order:
        if what == "layer":
            out.append(item)
        else:
            out.extend(_one_block(by_block[item], item, fwd, info, b, s, H, KV, d))
    return out


def _one_block(block: list[LayerSpec], idx: int, fwd: Forward, info: TransformerInfo,
               b: int, s: int, H: int, KV: int, d: int) -> list[LayerSpec]:
    qkv_groups: dict[str, LayerSpec] = {}   # attention parent → its last qkv entry
    ffn_groups: dict[str, LayerSpec] = {}   # ffn parent → its last up/gate entry
    for layer in block:
        if layer.kind == "attention_qkv":
            qkv_groups[_parent(layer.name)] = layer
        elif layer.kind == "ffn_up":
            ffn_groups[_parent(layer.name)] = layer
    inserts: dict[str, list[LayerSpec]] = {}
    for parent, last in qkv_groups.items():
        inserts[last.name] = [
            LayerSpec(name=f"{parent}.scores", kind="attention_scores", block=idx, gemm=True, heads=H,
                      tokens=fwd.tokens, **F.attention_scores(b, H, KV, s, s, d)),
            LayerSpec(name=f"{parent}.softmax", kind="softmax", block=idx, heads=H, tokens=fwd.tokens,
                      **F.softmax(b, H, s, s)),
            LayerSpec(name=f"{parent}.context", kind="attention_context", block=idx, gemm=True, heads=H,
                      tokens=fwd.tokens, **F.attention_context(b, H, KV, s, s, d)),
        ]
    for parent, last in ffn_groups.items():
        width = info.ffn_size
        inserts[last.name] = [LayerSpec(name=f"{parent}.act", kind="activation", block=idx, tokens=fwd.tokens,
                                        in_features=width, out_features=width,
                                        **F.activation(fwd.tokens, width, fwd.act, gated=info.gated_ffn))]
    seq: list[LayerSpec] = []
    for layer in block:
        seq.append(layer)
        seq.extend(inserts.get(layer.name, []))
    if len(qkv_groups) != 1:
        return seq  # cross-attention or unusual layout: keep registration order
    pre_norm = info.family in ("decoder", "vision")
    rank = {"embedding": 9, "attention_qkv": 10, "attention_scores": 11, "softmax": 12, "attention_context": 13,
            "attention_out": 14, "ffn_up": 20, "activation": 21, "ffn_down": 22}
    norm_ranks = [5, 15, 16, 23] if pre_norm else [14.5, 22.5, 23, 24]
    keyed, n_norm = [], 0
    for pos, layer in enumerate(seq):
        if layer.kind == "norm":
            r = norm_ranks[min(n_norm, len(norm_ranks) - 1)]
            n_norm += 1
        else:
            r = rank.get(layer.kind, 25)
        keyed.append((r, pos, layer))
    return [layer for _, _, layer in sorted(keyed, key=lambda t: (t[0], t[1]))]
