"""Model-architecture knowledge, in one leaf package: which model types exist and their family, where blocks,
attention, FFN, LayerNorms, embeddings and heads live (`Layout`), what a model's measured/exported output is
(`outputs.wrap`), and how layers are named (`naming`).

One module per family (bert.py, vit.py, llama.py) plus `registry.py`. This package imports only the standard
library, torch/transformers (lazily, inside functions) and edge_sdk.schemas; inspection, passes, quality, parallel
and the builder import it, never the other way round.
"""

from .base import Layout, base_model
from .registry import (FAMILIES, family_module, family_of_model_type, find_layout, is_decoder, is_vision,
                       kind_of_model_type, model_types)

__all__ = ["FAMILIES", "Layout", "base_model", "family_module", "family_of_model_type", "find_layout", "is_decoder",
           "is_vision", "kind_of_model_type", "model_types"]
