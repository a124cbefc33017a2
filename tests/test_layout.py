"""The house rules that keep the pipeline one-way, checked on the source itself (no imports executed).

- imports flow down: cli → api → stages → schemas / arch / device; nothing imports cli or api but the entry points;
- no import cycles between modules (function-level imports count: they are still a dependency);
- schemas import only schemas; arch (model-architecture knowledge) imports only schemas and the leaf helpers;
- the device package imports only the standard library, numpy and a runtime (it runs on a bare board);
- the report reads the planner through its package API, never its internals;
- no Python file is over ~450 lines without saying why at its top;
- nothing cites files outside the repository (a user's clone has no `shared/`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "edge_sdk"
LEAVES = {"errors", "quiet", "versions", "artifacts"}
MAX_LINES = 450
LONG_FILE_MARK = "Why this file is long:"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(REPO).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


MODULES = _modules()


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(edge_sdk modules this module imports, top-level names of everything else it imports)."""
    path, is_pkg = MODULES[name]
    pkg = name if is_pkg else name.rsplit(".", 1)[0]
    ours, others = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            cands = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for c in cands:
            if c.split(".")[0] != "edge_sdk":
                others.add(c.split(".")[0])
                continue
            while c not in MODULES and "." in c:
                c = c.rsplit(".", 1)[0]
            if c != name and not name.startswith(c + "."):  # a module's own parent package is always loaded first
                ours.add(c)
    return ours, others


EDGES = {m: _imports(m)[0] for m in MODULES}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in EDGES[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in MODULES:
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_areas_form_a_one_way_graph():
    deps: dict[str, set[str]] = defaultdict(set)
    for m, targets in EDGES.items():
        for t in targets:
            if _area(t) != _area(m):
                deps[_area(m)].add(_area(t))
    # nothing below the CLI reaches up to it, and only the CLI and the package root use the API
    for area, targets in deps.items():
        if area not in ("cli", "__main__"):
            assert "cli" not in targets, f"{area} imports the CLI"
        if area not in ("cli", "__init__"):
            assert "api" not in targets, \
                f"{area} imports edge_sdk.api (stages take artifacts, they do not call the API)"
    assert deps["schemas"] <= {"errors"}, f"schemas import stages: {deps['schemas']}"
    assert deps["arch"] <= {"schemas", "errors", "quiet"}, f"arch imports stages: {deps['arch']}"
    for leaf in LEAVES:
        assert deps[leaf] <= LEAVES, f"{leaf} is a leaf helper but imports {deps[leaf]}"


def test_report_reads_the_planner_through_its_api():
    inside = {t for m, ts in EDGES.items() if _area(m) == "reporting" for t in ts if _area(t) == "planner"}
    assert inside <= {"edge_sdk.planner"}, f"the report reaches into planner internals: {sorted(inside)}"


def test_device_package_imports_only_stdlib_numpy_and_runtimes():
    allowed_third_party = {"numpy", "onnxruntime", "onnxruntime_genai", "ai_edge_litert", "tflite_runtime",
                           "tokenizers", "openvino"}
    stdlib = set(sys.stdlib_module_names)
    device = [m for m in MODULES if _area(m) == "device"]
    assert device, "edge_sdk/device/ (the package shipped in every bundle) is missing"
    for m in device:
        ours, others = _imports(m)
        outside = {t for t in ours if _area(t) != "device"}
        assert not outside, f"{m} imports {sorted(outside)}: the device side must stand alone"
        assert others <= stdlib | allowed_third_party, f"{m} imports {sorted(others - stdlib)}"


def test_long_files_say_why():
    long = []
    for m, (path, _) in MODULES.items():
        text = path.read_text()
        if text.count("\n") > MAX_LINES and LONG_FILE_MARK not in "\n".join(text.splitlines()[:40]):
            long.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert not long, f"over {MAX_LINES} lines without '{LONG_FILE_MARK}' at the top: {long}"


def test_nothing_cites_files_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    needle = "shared/" + "reference"  # split so this file does not match itself
    hits = []
    for rel in tracked.stdout.splitlines():
        p = REPO / rel
        if p.suffix in (".gz", ".png", ".npz", ".onnx") or not p.is_file():
            continue
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        if needle in text or ("../" + "shared/") in text:
            hits.append(rel)
    assert not hits, f"files citing paths a user's clone does not have: {hits}"


def test_api_names_stay_functions_once_every_subpackage_is_loaded():
    """A subpackage named like an API function (edge_sdk/report/ next to edge_sdk.report()) would replace the
    function with the module the first time anything imports it."""
    import importlib

    import edge_sdk

    for m in sorted({".".join(m.split(".")[:2]) for m in MODULES if m.count(".") >= 1}):
        if _area(m) != "device" and not m.endswith("__main__"):
            importlib.import_module(m)
    for name in edge_sdk.__all__:
        if name != "__version__":
            assert callable(getattr(edge_sdk, name)) and not isinstance(getattr(edge_sdk, name), type(edge_sdk)), name


def test_the_api_default_quality_budget_is_the_planners_and_import_stays_light():
    from edge_sdk import api, planner

    assert api.DEFAULT_MAX_QUALITY_DROP == planner.DEFAULT_MAX_QUALITY_DROP
    r = subprocess.run([sys.executable, "-c", "import sys, edge_sdk; print(sorted(m for m in ('pydantic', 'torch', "
                        "'onnxruntime') if m in sys.modules))"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
