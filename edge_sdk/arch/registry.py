"""Which model families exist, which transformers `model_type`s belong to each, and which layout a model has.

One module per family (`bert.py`, `vit.py`, `llama.py`); each declares `MODEL_TYPES` and a `LAYOUT`. Adding a
family means adding its module and its name to `FAMILIES` — nothing else in edge-sdk lists model types.
Family modules are imported lazily and import no torch at module level, so asking "is this a decoder?" while
planning costs nothing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .base import Layout

#: family module names, in the order layouts are tried when one is found by structure
FAMILIES: tuple[str, ...] = ("bert", "vit", "llama")


def family_module(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})")
    return importlib.import_module(f"{__package__}.{name}")


def model_types() -> dict[str, str]:
    """Every model_type edge-sdk knows → its family module name."""
    out: dict[str, str] = {}
    for fam in FAMILIES:
        for mt in family_module(fam).MODEL_TYPES:
            out[mt] = fam
    return out


def family_of_model_type(model_type: str | None) -> str | None:
    """The family module name for a transformers `model_type`, or None when edge-sdk has no family for it."""
    return model_types().get(model_type or "")


def kind_of_model_type(model_type: str | None) -> str | None:
    """'encoder' | 'vision' | 'decoder' for a known model_type, else None."""
    fam = family_of_model_type(model_type)
    return family_module(fam).LAYOUT.kind if fam else None


def is_vision(model_type: str | None) -> bool:
    """Its first input is `pixel_values` (a build feeds it images, not tokens)."""
    return kind_of_model_type(model_type) == "vision"


def is_decoder(model_type: str | None) -> bool:
    return kind_of_model_type(model_type) == "decoder"


def layouts() -> list["Layout"]:
    return [family_module(f).LAYOUT for f in FAMILIES]


def find_layout(model: "nn.Module") -> "Layout | None":
    """The layout of `model`, found by structure (through `model.base_model`), or None."""
    from .base import base_model

    base = base_model(model)
    for layout in layouts():
        if layout.matches(base):
            return layout
    return None
