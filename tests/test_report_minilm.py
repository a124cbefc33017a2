"""The MiniLM report over every shipped profile: verdicts, op coverage, measured vs predicted, the three files, and
the HTML page rendered by a real headless Chromium (skipped, with the reason printed, only where Chromium cannot
be installed)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
from test_report_results import write_results

from edge_sdk.profiles import load_registry
from edge_sdk.profiles.host_detect import detect_this_machine
from edge_sdk.reporting import build_report, load_report, write_report


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    root = tmp_path_factory.mktemp("minilm-report")
    results = write_results(root / "results")
    # LiteRT ops mapped, not converted: converting MiniLM costs about a minute; test_report_models converts a ViT
    rep = build_report("minilm", devices="all", results_dir=results, tflite="map")
    paths = write_report(rep, root / "out")
    return rep, paths


def test_every_profile_gets_a_verdict(minilm):
    rep, _ = minilm
    assert sorted(d.device for d in rep.devices) == sorted(load_registry([], include_env=False).names())
    assert rep.model_name == "all-MiniLM-L6-v2" and rep.graph.status == "exported"
    assert "its own weights" in rep.graph.note
    host = rep.device("host")
    # the host profile's runtime efficiencies follow the ISA class (tests/test_host_profile.py): OpenVINO + NNCF int8
    # wins with VNNI, onnxruntime's dynamic int8 without
    want = "openvino" if detect_this_machine().has_vnni else "onnxruntime"
    assert host.verdict == "runs_as_is" and host.best_plan.runtime == want
    assert host.as_is_plan.precision == "fp32"
    cpu = next(c for c in host.coverage if c.provider == "CPUExecutionProvider")
    assert cpu.check == "session" and cpu.verdict == "full" and not cpu.issues
    ov = next(c for c in host.coverage if c.runtime == "openvino")  # converted by OpenVINO and queried, for real
    assert ov.check == "session" and ov.verdict == "full" and "OpenVINO" in ov.notes[0]
    assert ov.is_plan_runtime == (want == "openvino") and cpu.is_plan_runtime == (want == "onnxruntime")
    assert rep.ort_cpu.session_created and rep.ort_cpu.ops_without_kernel == []


def test_measured_latency_is_compared_and_bad_results_are_listed(minilm):
    rep, _ = minilm
    host = rep.device("host")
    assert len(host.measured) == 2  # its own run, and a Pi bundle benchmarked on this machine
    m = host.measured[0]
    assert m.kind == "measured" and m.p50_ms == 56.2 and 0.4 < m.predicted_over_measured < 0.5
    assert rep.results_used == ["local/20260101T000000.000Z.json", "local/20260101T000005.000Z.json",
                                "pi/20260101T000004.000Z.json"]
    assert host.measured[1].predicted_over_measured is None
    ignored = {i.file: i.reason for i in rep.results_ignored}
    assert len(ignored) == 3  # another model, broken JSON, not a BenchResult
    # the Pi result matches this model and is among the selected devices: it is used, not ignored
    assert len(rep.device("raspberry-pi-5").measured) == 1


def test_silent_fallbacks_are_flagged(minilm):
    rep, _ = minilm
    apple = rep.device("apple-a17-pro")
    plan_cov = next(c for c in apple.coverage if c.is_plan_runtime)
    assert plan_cov.provider == "CoreMLExecutionProvider" and plan_cov.verdict == "partial"
    assert {"Gather", "Where"} <= {i.op for i in plan_cov.issues}
    assert plan_cov.silent and "onnxruntime CPU EP" in plan_cov.fallback_to
    assert apple.fallback_flags[0].startswith("[plan runtime]")
    assert any("WARNING" in r and "CPU" in r for r in apple.reasons)
    nano = rep.device("jetson-nano")  # TensorRT 8.2 has no LayerNormalization (opset 17): the plan exports at 16
    assert nano.verdict == "runs_with_plan"
    assert any("LayerNormalization" in r and "opset 16" in r for r in nano.reasons)
    assert "export_onnx (opset 16)" in nano.best_plan.passes


def test_versions_and_sources_are_pinned(minilm):
    rep, _ = minilm
    for tool in ("python", "torch", "transformers", "onnx", "onnxruntime", "ai-edge-litert", "edge-sdk"):
        assert rep.versions[tool] and rep.versions[tool] != "not installed", tool
    assert rep.ort_cpu.onnxruntime_version == rep.versions["onnxruntime"]
    files = {s.file for s in rep.op_data}
    assert {"tensorrt-10.yaml", "edgetpu.yaml", "onnx_to_tflite.yaml"} <= files
    orin = rep.device("jetson-orin-nx")
    assert orin.runtime_versions["tensorrt/gpu"] == "10.3"


def test_files_are_written_and_json_is_the_source_of_truth(minilm):
    rep, paths = minilm
    assert sorted(paths) == ["report.html", "report.json", "report.md"]
    assert load_report(paths["report.json"]) == rep
    assert not list(paths["report.json"].parent.glob(".*tmp"))  # no temp files left behind
    md = paths["report.md"].read_text()
    for d in rep.devices:
        assert f"| {d.device} |" in md
    assert "Ops that would leave the accelerator" in md and "P = predicted, M = measured" in md
    assert "ignored: local/20260101T000002.000Z.json — not readable JSON" in md


def test_html_is_self_contained(minilm):
    _, paths = minilm
    html = paths["report.html"].read_text()
    assert html.count("<svg") == 3  # latency, memory, Pareto
    for forbidden in ("<script", "<link", "src=", "url(", "@import", "<iframe"):
        assert forbidden not in html, forbidden
    assert re.search(r"<a href='#dev-jetson-nano'", html)
    assert "measured" in html and "predicted" in html


# ------------------------------------------------------------------------------------------------ Chromium
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_rows(path) -> tuple[int, int, list[np.ndarray]]:
    """(width, height, pixel rows) for the rows a PNG stores with filter None or Sub: decodable on their own
    (Up/Average/Paeth rows depend on the row above; we don't need them to see that the page is not blank)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * bpp + 1)
    rows = []
    for r in raw:
        f, line = r[0], r[1:].reshape(width, bpp).astype(np.int64)
        if f == 0:
            rows.append(line[:, :3])
        elif f == 1:
            rows.append((np.cumsum(line, axis=0) % 256)[:, :3])
    return width, height, rows


def test_html_renders_in_headless_chromium(minilm, tmp_path):
    _, paths = minilm
    chromium = _chromium()
    if chromium is None:
        msg = "Chromium not installed (scripts/setup-system installs the Debian package where apt-get is allowed)"
        print(f"\n[report] skipping the screenshot test: {msg}")
        pytest.skip(msg)
    shot = tmp_path / "report.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1400,2400",
           paths["report.html"].resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 100_000, "a blank 1400x2400 page compresses to a few KB"
    width, height, rows = _png_rows(shot)
    assert (width, height) == (1400, 2400)
    assert len(rows) > 50
    pixels = np.concatenate(rows)
    colours = {tuple(p) for p in pixels[:: 7].tolist()}
    assert len(colours) > 60, f"only {len(colours)} distinct colours: the page did not render its content"
    background = np.all(pixels == pixels[0], axis=1).mean()
    assert background < 0.97
    # the verdict green of the plots and badges (#2e7d32, blended at most slightly by anti-aliasing/opacity)
    green = np.abs(pixels - np.array([46, 125, 50])).max(axis=1) <= 40
    assert green.sum() > 100, "no verdict-green pixels: the plots/badges did not render"
