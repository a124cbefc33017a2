"""`edge-sdk report` over results of several devices that share a profile (as `bench --fleet` saves them): every
device's measurement is listed, and their spread is in report.json, report.md and report.html."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from edge_sdk.cli import app
from test_report_results import bench_result

VIT = "examples/configs/tiny-vit.json"


def _stats(p50: float) -> dict:
    return {"mean": p50, "p50": p50, "p90": p50, "p95": p50, "p99": p50, "min": p50, "max": p50, "std": 0.0}


def test_report_shows_each_device_and_the_spread_of_a_profile(tmp_path):
    res_dir = tmp_path / "results"
    for i, (target, p50) in enumerate([("pi-1", 10.0), ("pi-2", 12.0), ("pi-3", 11.0), ("pi-1", 30.0)]):
        r = bench_result(model=VIT, model_name="tiny-vit", target=target, target_profile="host", device="host",
                         latency_ms=_stats(p50), started_at=f"2026-11-28T00:0{i}:00.000+00:00")
        r["batches"][0]["latency_ms"] = _stats(p50)
        (res_dir / target).mkdir(parents=True, exist_ok=True)
        (res_dir / target / f"2026112{i}T000000.000Z.json").write_text(json.dumps(r))
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["report", "--model", VIT, "--devices", "host", "-o", str(out), "--results",
                                   str(res_dir), "--tflite", "map"])
    assert res.exit_code == 0, res.output
    host = json.loads((out / "report.json").read_text())["devices"][0]
    assert sorted({m["target"] for m in host["measured"]}) == ["pi-1", "pi-2", "pi-3"] and len(host["measured"]) == 4
    spread = host["spread"]  # each device's newest result: pi-1's 30 ms replaced its 10 ms
    assert spread["p50_ms_by_target"] == {"pi-1": 30.0, "pi-2": 12.0, "pi-3": 11.0}
    assert (spread["p50_min_ms"], spread["p50_median_ms"], spread["p50_max_ms"]) == (11.0, 12.0, 30.0)
    assert spread["relative"] == round(19 / 12, 4)
    assert "spread over 3 devices" in (out / "report.md").read_text()
    assert "spread over 3 devices" in (out / "report.html").read_text()
