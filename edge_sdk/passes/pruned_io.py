"""How is a pruned model saved and loaded again?

`save_pretrained` cannot express per-layer head/FFN counts (transformers 5 also dropped `pruned_heads`), and
`from_pretrained` would refuse the shrunken tensors. So a pruned model directory holds:
  pruning.json        the PruningRecord (base config + kept layers/heads/neurons, original indices)
  config.json         the UNPRUNED base config (so tools still see the model family)
  model.safetensors   the pruned weights (safetensors.torch.save_model: handles tied weights)
  tokenizer files     when a tokenizer is given
`load_pruned` builds the base architecture from the config, cuts it with the record (the same surgery as pruning)
and loads the weights strictly, so any mismatch is an error rather than silently random weights.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import transformers
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from ..artifacts import load_artifact
from ..errors import InputError
from .prune_surgery import PruningRecord, apply_record

RECORD_FILE = "pruning.json"
WEIGHTS_FILE = "model.safetensors"


def save_pruned(model: nn.Module, record: PruningRecord, directory: str | Path, *, tokenizer=None) -> Path:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD_FILE).write_text(record.model_dump_json(indent=1), encoding="utf-8")
    (out / "config.json").write_text(json.dumps(record.base_config, indent=1, default=str), encoding="utf-8")
    save_model(model, str(out / WEIGHTS_FILE))
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out


def is_pruned_dir(directory: str | Path) -> bool:
    return (Path(directory) / RECORD_FILE).is_file()


def load_record(directory: str | Path) -> PruningRecord:
    path = Path(directory) / RECORD_FILE
    if not path.is_file():
        raise InputError(f"{directory}: not a pruned-model directory (no {RECORD_FILE})")
    return load_artifact(PruningRecord, path, "pruning record")


def load_pruned(directory: str | Path, *, attn_implementation: str | None = None) -> tuple[nn.Module, PruningRecord]:
    """The pruned model (eval mode) and its record."""
    directory = Path(directory)
    record = load_record(directory)
    cls = getattr(transformers, record.model_class, None)
    if cls is None or not hasattr(cls, "config_class"):
        raise InputError(f"{directory / RECORD_FILE}: field 'model_class': unknown transformers class "
                         f"{record.model_class!r}")
    config = cls.config_class.from_dict(dict(record.base_config))
    if attn_implementation:
        config._attn_implementation = attn_implementation
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{directory}: missing {WEIGHTS_FILE}")
    with safe_open(str(weights), framework="pt") as f:
        keys = list(f.keys())
    kwargs = {}
    if "add_pooling_layer" in inspect.signature(cls.__init__).parameters:     # BertModel/ViTModel(…, False)
        kwargs["add_pooling_layer"] = any(".pooler." in f".{k}" for k in keys)
    model = cls(config, **kwargs)
    apply_record(model, record)
    try:
        load_model(model, str(weights), strict=True)
    except RuntimeError as exc:
        raise InputError(f"{weights}: weights do not match the architecture in {RECORD_FILE} "
                         f"({' '.join(str(exc).split())[:200]})") from None
    return model.eval(), record
