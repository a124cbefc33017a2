"""`--targets` / `--fleet` on the CLI, against real OpenSSH servers on loopback (one per device): which targets a
group selects, the summary naming each device's result with its exit status, exit 8 when some failed, per-device
bench results and their spread in the report's data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import make_bundle
from edge_sdk.errors import InputError
from edge_sdk.remote.fleet import resolve_group
from edge_sdk.schemas.fleet import FleetResult
from fleet_devices import kill_sshd, start_devices

pytestmark = pytest.mark.ssh
REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Three devices: pi-1 and pi-2 up, gone-1 down (its sshd killed); fleet `lab` = pi-* plus gone-1."""
    work = tmp_path_factory.mktemp("fleet-cli")
    os.chmod(work, 0o755)
    tdir = work / "targets"
    devs = start_devices(work, ["pi-1", "pi-2", "gone-1"], tdir, tags={"pi-1": ["bench"], "pi-2": ["bench"]})
    kill_sshd(devs[2].server)
    (tdir / "fleets").mkdir()
    (tdir / "fleets" / "lab.yaml").write_text(yaml.safe_dump({"name": "lab", "targets": ["pi-*", "gone-1"],
                                                               "parallel": 3}))
    yield work, tdir, {d.name: d for d in devs}
    for d in devs:
        d.server.stop()


def test_groups_select_by_name_glob_tag_and_fleet_file(lab):
    _, tdir, _ = lab
    d = [str(tdir)]
    assert [t.name for t in resolve_group("pi-*", None, d)[1]] == ["pi-1", "pi-2"]
    assert [t.name for t in resolve_group("gone-1,tag:bench", None, d)[1]] == ["gone-1", "pi-1", "pi-2"]
    assert [t.name for t in resolve_group("tag:bench", None, d)[1]] == ["pi-1", "pi-2"]
    fleet, ts = resolve_group(None, "lab", d)
    assert fleet.parallel == 3 and [t.name for t in ts] == ["pi-1", "pi-2", "gone-1"]
    with pytest.raises(InputError, match="'pi-9' matches no target .*closest: pi-"):
        resolve_group("pi-9", None, d)
    with pytest.raises(InputError, match="unknown fleet 'nope' .*: lab"):
        resolve_group(None, "nope", d)
    bad = tdir.parent / "bad-fleet.yaml"
    bad.write_text("name: empty\nparallel: 0\n")
    with pytest.raises(InputError, match=r"bad-fleet.yaml: field 'parallel'"):
        resolve_group(None, str(bad), d)
    bad.write_text("name: empty\n")
    with pytest.raises(InputError, match="bad-fleet.yaml: a fleet needs 'targets'"):
        resolve_group(None, str(bad), d)


def test_fleet_deploy_summary_names_each_device_and_exits_8(lab, tmp_path):
    work, tdir, devs = lab
    bundle = make_bundle(tmp_path / "b", big_mb=1)
    r = cli("deploy", str(bundle), "--fleet", "lab", "--targets-dir", str(tdir), "--json")
    assert r.returncode == 8, r.stderr
    res = FleetResult.model_validate_json(r.stdout)
    out = {o.target: o for o in res.targets}
    assert (out["pi-1"].status, out["pi-2"].status, out["gone-1"].status) == ("ok", "ok", "failed")
    assert out["gone-1"].exit_code == 5 and "connection refused" in out["gone-1"].error
    assert res.parallel == 3 and res.fleet == "lab" and out["pi-1"].result["bytes_sent"] > 1_000_000
    assert "1 of 3 device(s) did not succeed: gone-1 (failed)" in r.stderr and "Traceback" not in r.stderr
    assert devs["pi-1"].current() == devs["pi-2"].current() == out["pi-1"].result["release_id"]

    r = cli("deploy", str(bundle), "--targets", "pi-1,gone-1", "--targets-dir", str(tdir))  # the table
    assert r.returncode == 8
    lines = {ln.split()[1]: ln for ln in r.stdout.splitlines() if ln.startswith("│ pi-1") or
             ln.startswith("│ gone-1")}
    assert "ok" in lines["pi-1"] and "already current" in lines["pi-1"] and "0.0 MB of" in lines["pi-1"]
    assert "failed" in lines["gone-1"] and " 5 " in lines["gone-1"] and "connecting" in lines["gone-1"]

    r = cli("deploy", str(bundle), "--targets", "pi-*", "--targets-dir", str(tdir), "--json")
    assert r.returncode == 0 and FleetResult.model_validate_json(r.stdout).ok


def test_fleet_flags_are_checked(lab, tmp_path):
    _, tdir, _ = lab
    r = cli("deploy", str(tmp_path), "--target", "pi-1", "--targets", "pi-2", "--targets-dir", str(tdir))
    assert r.returncode == 2 and "not both" in r.stderr
    r = cli("deploy", str(tmp_path), "--target", "pi-1", "--canary", "1", "--targets-dir", str(tdir))
    assert r.returncode == 2 and "are for fleets" in r.stderr
    r = cli("calibrate", "--targets", "pi-1", "--fleet", "lab", "--targets-dir", str(tdir))
    assert r.returncode == 2 and "exactly one of" in r.stderr
    b = make_bundle(tmp_path / "b", big_mb=0.1)
    r = cli("deploy", str(b), "--targets", "pi-*", "--latency-budget-ms", "5", "--targets-dir", str(tdir))
    assert r.returncode == 2 and "--canary" in r.stderr


def test_targets_check_and_rollback_over_a_fleet(lab, tmp_path):
    from edge_sdk import api

    _, tdir, devs = lab
    r = cli("targets", "--targets-dir", str(tdir), "check", "--targets", "tag:bench", "--json")
    assert r.returncode == 0, r.stderr
    res = FleetResult.model_validate_json(r.stdout)
    assert res.action == "check" and all(o.result["facts"]["python"] for o in res.targets)
    before = devs["pi-1"].current()
    new = api.deploy_fleet(make_bundle(tmp_path / "next", big_mb=0.2, seed=9), targets="tag:bench",
                           targets_dirs=[str(tdir)])
    rid = new.targets[0].result["release_id"]
    assert new.ok and devs["pi-1"].current() == devs["pi-2"].current() == rid
    r = cli("rollback", "--fleet", "lab", "--targets-dir", str(tdir))
    assert r.returncode == 8, r.stderr
    assert f"current {rid} -> {before}" in r.stdout and "connection refused" in r.stdout
    assert devs["pi-1"].current() == devs["pi-2"].current() == before


def test_fleet_bench_saves_each_device_and_the_report_shows_their_spread(lab, tmp_path):
    from edge_sdk import api
    from edge_sdk.reporting.measured import collect_results
    from edge_sdk.reporting.spread import device_spread, spread_line
    from test_bench_inputs import make_bundle as make_model_bundle

    work, tdir, _ = lab
    api.deploy_fleet(make_model_bundle(work / "model", cache_dir=work), targets="tag:bench",
                     targets_dirs=[str(tdir)])
    r = cli("bench", "--targets", "tag:bench,gone-1", "--iterations", "5", "--warmup", "1", "--targets-dir",
            str(tdir), "--results-dir", str(tmp_path / "results"), "--json")
    assert r.returncode == 8, r.stderr
    res = FleetResult.model_validate_json(r.stdout)
    assert [o.status for o in res.targets] == ["ok", "ok", "failed"]
    saved = sorted(p.parent.name for p in (tmp_path / "results").rglob("*.json"))
    assert saved == ["pi-1", "pi-2"]  # one result per device, where a single-target bench puts it
    matched, _ = collect_results(tmp_path / "results", model="tiny-bert", model_name="tiny-bert", devices={"host"})
    spread = device_spread([m.measurement for m in matched])
    assert spread is not None and sorted(spread.p50_ms_by_target) == ["pi-1", "pi-2"]
    assert spread.p50_min_ms <= spread.p50_median_ms <= spread.p50_max_ms
    assert "spread over 2 devices" in spread_line(spread)
    assert json.loads(r.stdout)["targets"][0]["result"]["target"] == "pi-1"
