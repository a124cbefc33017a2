"""Where do the parts of one model family live in its module tree? (The interface every family module fills in.)

A `Layout` answers structural questions about a transformers model of its family — the transformer blocks, the
attention projections and head count, the FFN, the LayerNorms, the embeddings, the final norm and the head — so
pruning, distillation, export, quality and parallel code never spell out `encoder.layer[i].attention.self.query`
themselves. Layouts are found by structure (`matches`), so subclasses and task heads work through
`model.base_model`.

No torch import here: the registry and the naming rules are read while planning on the meta device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

#: (owner module, attribute name): where a submodule lives, so surgery can replace it with `setattr`.
Ref = tuple["nn.Module", str]


def base_model(model: "nn.Module") -> "nn.Module":
    """The backbone under a task head (`BertForSequenceClassification.bert`), or the model itself."""
    return getattr(model, "base_model", model)


class Layout:
    """The module layout of one family. Subclasses fill in the structural accessors."""

    family = ""              # family module name: "bert", "vit", "llama"
    kind = ""                # "encoder" (token inputs), "vision" (pixel_values), "decoder" (causal LM)
    prunable = False         # structured pruning (heads / FFN neurons / layers) knows how to cut it
    pipeline_role: str | None = None   # how parallel code runs a stage: "encoder" | "decoder" | None (unsupported)

    # ---- detection
    def matches(self, base: "nn.Module") -> bool:
        raise NotImplementedError

    # ---- the block stack
    def layers(self, base: "nn.Module") -> "nn.ModuleList":
        raise NotImplementedError

    def set_layers(self, base: "nn.Module", layers: "nn.ModuleList") -> None:
        raise NotImplementedError

    # ---- inside one block
    def attention(self, layer: "nn.Module") -> "nn.Module":
        raise NotImplementedError

    def qkv(self, layer: "nn.Module") -> list[Ref]:
        raise NotImplementedError

    def out_proj(self, layer: "nn.Module") -> Ref:
        raise NotImplementedError

    def ffn(self, layer: "nn.Module") -> tuple[Ref, Ref]:
        """(up / in projection, down / out projection)."""
        raise NotImplementedError

    def ffn_residual(self, layer: "nn.Module") -> "nn.Module":
        """The module whose first input is the residual stream the FFN's output is added to (BERT: the FFN input,
        post-LN; pre-LN blocks: the norm in front of the FFN). Pruning's weight reconstruction reads it."""
        raise NotImplementedError

    def ffn_gate(self, layer: "nn.Module") -> Ref | None:
        """The gate projection of a gated FFN (SwiGLU), None otherwise."""
        return None

    def layer_norms(self, layer: "nn.Module") -> list[Ref]:
        raise NotImplementedError

    def has_cross_attention(self, layer: "nn.Module") -> bool:
        """A block that also attends to an encoder's output (an encoder-decoder's decoder half)."""
        return False

    def head_dim(self, layer: "nn.Module") -> int:
        raise NotImplementedError

    def set_num_heads(self, layer: "nn.Module", n: int) -> None:
        raise NotImplementedError

    def num_heads(self, layer: "nn.Module") -> int:
        owner, name = self.out_proj(layer)
        return getattr(owner, name).in_features // self.head_dim(layer)

    def ffn_width(self, layer: "nn.Module") -> int:
        return self.linear(self.ffn(layer)[0]).out_features

    @staticmethod
    def linear(ref: Ref) -> "nn.Linear":
        return getattr(ref[0], ref[1])

    # ---- around the stack
    def embeddings(self, base: "nn.Module") -> "nn.Module":
        raise NotImplementedError

    def embed(self, embeddings: "nn.Module", x: Any) -> Any:
        """Run the embeddings on the model's first input (token ids, or pixel values)."""
        return embeddings(x)

    def final_norm(self, base: "nn.Module") -> "nn.Module | None":
        return None

    def head(self, model: "nn.Module") -> "nn.Module | None":
        """The classifier / LM head on top of the stack, else the pooler, when the model has one."""
        for owner, name in ((model, "classifier"), (model, "lm_head"), (base_model(model), "pooler")):
            mod = getattr(owner, name, None)
            if mod is not None:
                return mod
        return None

    def rotary(self, base: "nn.Module") -> "nn.Module | None":
        """The rotary position-embedding module shared by all blocks, when the family has one."""
        return None

    def block_kwargs(self, config: Any, hidden: Any, rotary: "nn.Module | None" = None) -> dict[str, Any]:
        """What a block needs besides the hidden states (masks, rotary embeddings), recomputed from `hidden` with
        the same transformers helpers the model's own forward uses (inputs carry no padding)."""
        return {}

    def output_name(self, model: "nn.Module") -> str:
        """What the model's forward returns that we measure: last_hidden_state or logits."""
        return "last_hidden_state"
