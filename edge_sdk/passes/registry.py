"""Which function applies a given pass config?

Like torchao's `quantize_(model, Int8WeightOnlyConfig())`: a config is data, and one function per config type
does the work. Each pass module registers its own function with a decorator, so adding a technique is one new
module and nothing else:

    @register(QuantizeOnnxConfig)
    def apply(config: QuantizeOnnxConfig, state: BuildState) -> BuildState: ...

Pass modules import torch/onnxruntime/litert, which costs seconds, so they are not imported with the package.
A lookup of a config type that has no function yet first imports the module named like its `kind`
(`export_onnx` → `passes/export_onnx.py`), and if that does not register it, every module of `edge_sdk.passes`
(except the data-only ones below). An import that fails is remembered and named in the error if the lookup still
misses, so a broken optional toolchain (say, litert for TFLite) cannot hide behind "no apply function".
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, TypeVar

from pydantic import BaseModel

from .state import BuildState

ApplyFn = Callable[[BaseModel, BuildState], BuildState]
F = TypeVar("F", bound=ApplyFn)

_APPLY: dict[type[BaseModel], ApplyFn] = {}
_NOT_PASS_MODULES = {"configs", "registry", "state"}
_import_failures: dict[str, str] = {}
_discovered = False


def register(config_type: type[BaseModel]) -> Callable[[F], F]:
    """Decorator: make `fn` the apply function for `config_type`. Registering a type twice is a programming
    error (two modules would silently race for it), so it raises."""

    def deco(fn: F) -> F:
        current = _APPLY.get(config_type)
        if current is not None and current is not fn and _qualname(current) != _qualname(fn):
            raise RuntimeError(f"{config_type.__name__} already has an apply function: {_qualname(current)}; "
                               f"refusing to replace it with {_qualname(fn)}")
        _APPLY[config_type] = fn
        return fn

    return deco


def _qualname(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _discover() -> None:
    """Import every pass module once, so their @register decorators run."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in _NOT_PASS_MODULES or info.name.startswith("_"):
            continue
        _import_quietly(f"{__package__}.{info.name}")


def _import_quietly(name: str) -> None:
    if name.rsplit(".", 1)[-1] in _NOT_PASS_MODULES:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but something it imports does not
            _import_failures[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    except Exception as exc:  # noqa: BLE001 - reported only if the lookup then misses
        _import_failures[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def apply_fn_for(config: BaseModel | type[BaseModel]) -> ApplyFn:
    """The registered function for this config (instance or type)."""
    config_type = config if isinstance(config, type) else type(config)
    fn = _APPLY.get(config_type)
    kind = getattr(config_type, "model_fields", {}).get("kind")
    if fn is None and kind is not None and isinstance(kind.default, str):
        _import_quietly(f"{__package__}.{kind.default}")  # convention first: kind export_onnx → export_onnx.py
        fn = _APPLY.get(config_type)
    if fn is None:
        _discover()
        fn = _APPLY.get(config_type)
    if fn is None:
        failed = "; ".join(f"{m} failed to import ({why})" for m, why in _import_failures.items())
        label = f"'{kind.default}'" if kind is not None else config_type.__name__
        raise NotImplementedError(f"no apply function registered for pass {label} ({config_type.__name__})"
                                  + (f"; {failed}" if failed else ""))
    return fn


def apply_pass(config: BaseModel, state: BuildState) -> BuildState:
    """Run one pass. The result must be a BuildState (a pass that forgets to return it is caught here)."""
    out = apply_fn_for(config)(config, state)
    if not isinstance(out, BuildState):
        raise TypeError(f"{_qualname(apply_fn_for(config))} returned {type(out).__name__}, not BuildState")
    return out


def registered() -> dict[str, str]:
    """config class name → apply function, after discovery (for `--debug` output and tests)."""
    _discover()
    return {t.__name__: _qualname(fn) for t, fn in _APPLY.items()}
