"""The op graph is an artifact: made once by the graph stage, cached, and read by the report without exporting.

Uses the tiny BERT config (random weights: structure only), so a real torch → ONNX export takes about a second.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import edge_sdk
from edge_sdk.errors import InputError
from edge_sdk.opgraph import graph_key, load_graph, make_graph
from edge_sdk.reporting import build_report

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "tiny-bert.json"
DEVICES = "host,jetson-orin-nx,raspberry-pi-5"


def _comparable(rep) -> dict:
    d = rep.model_dump(mode="json")
    for k in ("created_at", "seconds"):
        d.pop(k)
    d["graph"].pop("seconds")
    return d


@pytest.fixture()
def cache(tmp_path):
    return tmp_path / "graphs"


def _forbid_exporting(monkeypatch):
    """Every way the report could obtain a graph by itself raises: ONNX export, the stand-in, LiteRT conversion."""
    def boom(*a, **k):
        raise AssertionError("the report exported or converted a model although its OpGraph exists")

    import edge_sdk.opgraph.onnx_graph as og
    import edge_sdk.opgraph.tflite as tfl
    import edge_sdk.passes.export_onnx as eo

    monkeypatch.setattr(og, "export_graph", boom)
    monkeypatch.setattr(eo, "export_onnx", boom)
    monkeypatch.setattr(tfl, "convert", boom)


def test_report_reads_the_graph_artifact_and_never_exports(cache, monkeypatch):
    g, where = make_graph(str(CONFIG), seq_len=32, tflite="map", cache_dir=cache)
    assert (where / "graph.json").is_file() and (where / g.exported_file).is_file()
    assert g.info.status == "exported" and g.exported_nodes and g.ort_cpu.session_created
    fresh = build_report(str(CONFIG), devices=DEVICES, seq_len=32, results_dir=None, tflite="map", graph=g)

    _forbid_exporting(monkeypatch)
    from_cache = build_report(str(CONFIG), devices=DEVICES, seq_len=32, results_dir=None, tflite="map",
                              graph_cache=cache)
    given = build_report(str(CONFIG), devices=DEVICES, seq_len=32, results_dir=None, tflite="map",
                         graph=load_graph(where))
    assert _comparable(from_cache) == _comparable(fresh) == _comparable(given)


def test_without_the_artifact_the_forbidden_exporter_is_what_fails(cache, monkeypatch):
    """The guard above is real: with an empty cache the same report has to export, and the guard catches it."""
    _forbid_exporting(monkeypatch)
    with pytest.raises(AssertionError, match="although its OpGraph exists"):
        build_report(str(CONFIG), devices="host", seq_len=32, results_dir=None, tflite="map", graph_cache=cache)


def test_the_cache_key_follows_the_model_the_length_and_the_mode(tmp_path):
    cfg = tmp_path / "config.json"
    shutil.copy(CONFIG, cfg)
    k = graph_key(str(cfg), 32, "map")
    assert k == graph_key(str(cfg), 32, "map")
    assert k != graph_key(str(cfg), 64, "map") and k != graph_key(str(cfg), 32, "auto")
    data = json.loads(cfg.read_text())
    data["intermediate_size"] = data["intermediate_size"] * 2
    cfg.write_text(json.dumps(data))
    assert graph_key(str(cfg), 32, "map") != k  # an edited model never reuses a stale graph


def test_a_second_make_reads_the_saved_artifact(cache, monkeypatch):
    first, where = make_graph(str(CONFIG), seq_len=16, tflite="map", cache_dir=cache)
    _forbid_exporting(monkeypatch)
    again, where2 = make_graph(str(CONFIG), seq_len=16, tflite="map", cache_dir=cache)
    assert where2 == where and again == first
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no half-written temp dirs left


def test_a_graph_of_another_model_or_length_is_refused(cache):
    g, _ = make_graph(str(CONFIG), seq_len=16, tflite="map", cache_dir=cache)
    with pytest.raises(InputError, match="sequence 16"):
        build_report(str(CONFIG), devices="host", seq_len=32, results_dir=None, tflite="map", graph=g)


def test_graph_cli_json_and_bad_mode(cache, tmp_path):
    from typer.testing import CliRunner

    from edge_sdk.cli import app

    r = CliRunner().invoke(app, ["graph", str(CONFIG), "--seq-len", "16", "--tflite", "map", "--cache-dir",
                                 str(cache), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kind"] == "op_graph"
    r = CliRunner().invoke(app, ["graph", str(CONFIG), "--tflite", "guess", "--cache-dir", str(cache)])
    assert r.exit_code == 2 and "--tflite" in r.output


def test_api_graph_matches_make_graph(cache):
    g = edge_sdk.graph(str(CONFIG), seq_len=16, tflite="map", cache_dir=cache)
    assert g == make_graph(str(CONFIG), seq_len=16, tflite="map", cache_dir=cache)[0]
