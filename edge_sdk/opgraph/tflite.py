"""Which LiteRT builtin ops does the converted model really contain? Convert it and read the flatbuffer.

When edge-sdk's LiteRT export is usable (passes/export_tflite.py with the isolated litert-torch environment made
by scripts/setup-litert), the graph stage converts the model once (fp32, static batch 1 x seq_len, the shape builds
use) and reads the op codes through ai_edge_litert's Interpreter. Creating that interpreter is also a real check
that LiteRT's CPU kernels can load every op. Otherwise (an ONNX file, a decoder, no converter environment) the
report falls back to the mapping in report/tflite_map.py and says why.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from ..schemas.graph import TfliteOps


def litert_env_problem() -> str | None:
    """None when the converter environment is there; else why not (one line)."""
    try:
        from ..passes.export_tflite import litert_python
    except ImportError as exc:  # pragma: no cover - the export is part of the package
        return f"edge-sdk's LiteRT export is not available ({exc})"
    try:
        litert_python()
    except Exception as exc:  # noqa: BLE001 - LiteRtEnvError: the message names the fix (scripts/setup-litert)
        return " ".join(str(exc).split())
    return None


def read_ops(path: Path) -> tuple[list[str], bool, str | None]:
    """Builtin ops in execution order, and whether LiteRT's CPU interpreter loads the file (no default delegates,
    so XNNPACK does not hide a kernel LiteRT lacks)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_path=os.fspath(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        ops = it._get_ops_details()
        ok, err = True, None
    except Exception as exc:  # noqa: BLE001 - an unloadable file is the finding, reported by the caller
        return [], False, " ".join(str(exc).split())[:300]
    return [str(o["op_name"]) for o in sorted(ops, key=lambda o: o["index"])], ok, err


@contextlib.contextmanager
def _native_stderr_silenced():
    """LiteRT's C++ runtime logs "INFO: Created TensorFlow Lite XNNPACK delegate" straight to fd 2, which would
    land in the middle of the CLI's output; Python exceptions are unaffected."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def convert(model, kind: str, tokenizer, seq_len: int, work_dir: Path) -> TfliteOps:
    from importlib import metadata

    from ..schemas.passes import ExportTfliteConfig
    from ..passes.export_tflite import export_tflite

    path = work_dir / "model.tflite"
    with _native_stderr_silenced():
        res = export_tflite(model, path, model_kind=kind, tokenizer=tokenizer,  # type: ignore[arg-type]
                            config=ExportTfliteConfig(quantize="none", seq_len=seq_len))
        nodes, ok, err = read_ops(path)
    shape = f"batch 1 x {res.seq_len} tokens" if res.seq_len else "batch 1"
    return TfliteOps(ops=nodes, interpreter_ok=ok, error=err, litert_version=metadata.version("ai-edge-litert"),
                           note=f"converted with edge-sdk's LiteRT export (litert-torch, fp32, static {shape}; "
                                f"verified against PyTorch); op codes read from the .tflite flatbuffer with "
                                f"ai-edge-litert {metadata.version('ai-edge-litert')}")
