"""`edge-sdk report`: writes report.json/.md/.html into -o and prints their paths; user mistakes are one line on
stderr and exit 2 (no traceback). Runs the real command in-process (typer's runner) on a tiny ViT config."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edge_sdk.cli import app

VIT = "examples/configs/tiny-vit.json"


@pytest.fixture
def runner():
    return CliRunner()


def test_report_writes_three_files_and_prints_paths(runner, tmp_path):
    out = tmp_path / "out" / "report"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "junk.json").write_text("not json")
    res = runner.invoke(app, ["report", "--model", VIT, "--devices", "host,jetson-orin-nx", "-o", str(out),
                              "--results", str(tmp_path / "results"), "--tflite", "map"])
    assert res.exit_code == 0, res.output
    printed = [line for line in res.stdout.splitlines() if line.strip()]
    assert printed == [str(out / "report.json"), str(out / "report.md"), str(out / "report.html")]
    data = json.loads((out / "report.json").read_text())
    assert data["kind"] == "compat_report" and [d["device"] for d in data["devices"]] == ["host", "jetson-orin-nx"]
    assert data["results_ignored"][0]["file"] == "junk.json"
    assert data["pareto_device"] == "host"
    assert "<svg" in (out / "report.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]


def test_rewriting_replaces_files_atomically(runner, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.html").write_text("old")
    res = runner.invoke(app, ["report", "--model", VIT, "--devices", "host", "-o", str(out), "--results",
                              str(tmp_path / "none"), "--tflite", "map"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]


@pytest.mark.parametrize("args, message", [
    (["--devices", "no-such-board"], "unknown device 'no-such-board'"),
    (["--devices", "mobile", "--pareto-device", "l4"], "--pareto-device l4: 'l4' is not among the selected devices"),
    (["--model", "does/not/exist.json"], "not found"),
    (["--objective", "speed"], "--objective must be one of"),
    (["--bundle", "/nonexistent-bundle"], "no manifest.json"),
    (["--tflite", "guess"], "--tflite must be one of auto, map"),
])
def test_user_mistakes_are_one_line_exit_2(runner, tmp_path, args, message):
    base = ["report", "--model", VIT, "--devices", "host", "-o", str(tmp_path / "o")]
    res = runner.invoke(app, base + args)
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_output_that_is_a_file_is_refused(runner, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["report", "--model", VIT, "--devices", "host", "-o", str(f)])
    assert res.exit_code == 2 and "is not a directory" in res.stderr
    assert f.read_text() == "x"
