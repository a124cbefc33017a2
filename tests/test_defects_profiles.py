"""Profile defects found by new-user trials (issue 14): `devices validate` takes directories, lists every problem
with its file and line, names a misspelled field as such, and refuses a CPU that lists int8 without an int8 peak."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge_sdk.cli import main
from edge_sdk.errors import InputError
from edge_sdk.profiles import load_profile_file
from edge_sdk.profiles.loader import shipped_profiles_dir

HOST = shipped_profiles_dir() / "host.yaml"


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return exc.value.code, out, err


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def _bad_host(path: Path) -> Path:
    """host.yaml with a misspelled field and a unit in a number: two problems."""
    text = HOST.read_text()
    text = text.replace("memory_bandwidth_gbps:", "memory_bandwith_gbps:", 1)
    data = yaml.safe_load(text)
    text = text.replace(f"memory_total_gb: {data['memory_total_gb']}", "memory_total_gb: 8GB", 1)
    path.write_text(text)
    return path


def test_validate_lists_every_problem_with_its_line(capsys, tmp_path):
    f = _bad_host(tmp_path / "mine.yaml")
    text = f.read_text()
    code, _, err = run(capsys, "devices", "validate", str(f))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2
    typo = next(ln for ln in lines if "memory_bandwith_gbps" in ln)
    assert typo.startswith(f"error: {f}:{_line_of(text, 'memory_bandwith_gbps')}: ")
    assert "did you mean 'memory_bandwidth_gbps'" in typo
    assert not any("'memory_bandwidth_gbps': Field required" in ln for ln in lines)  # the typo says it, once
    total = next(ln for ln in lines if "'memory_total_gb'" in ln)
    assert total.startswith(f"error: {f}:{_line_of(text, 'memory_total_gb: 8GB')}: ") and "'8GB'" in total
    assert lines[-1] == "error: 2 problems in 1 of 1 profile file(s)"


def test_loading_names_the_typo_and_says_how_to_see_the_rest(tmp_path):
    f = _bad_host(tmp_path / "mine.yaml")
    with pytest.raises(InputError) as exc:
        load_profile_file(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:") and "[+1 more; `edge-sdk devices validate" in msg


def test_validate_a_directory_checks_every_yaml_in_it(capsys, tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "good.yaml").write_text(HOST.read_text().replace("name: host", "name: my-host", 1))
    _bad_host(d / "bad.yaml")
    (d / "README.md").write_text("not a profile")
    code, out, err = run(capsys, "devices", "validate", str(d))
    assert code == 2 and f"ok {d / 'good.yaml'}: my-host" in out
    assert f"{d / 'bad.yaml'}:" in err and "1 of 2 profile file(s)" in err
    code, out, _ = run(capsys, "devices", "validate", str(shipped_profiles_dir()))
    assert code == 0 and out.count("ok ") == len(list(shipped_profiles_dir().glob("*.yaml")))
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "devices", "validate", str(tmp_path / "empty"))
    assert code == 2 and "no .yaml/.yml profile files" in err


def test_cpu_listing_int8_without_an_int8_peak_is_an_error(capsys, tmp_path):
    data = yaml.safe_load(HOST.read_text())
    cpu = next(u for u in data["compute_units"] if u["kind"] == "cpu")
    assert "int8" in cpu["precisions"]
    cpu["peak_tops_dense"].pop("int8")
    data["citations"] = {k: v for k, v in data.get("citations", {}).items() if "peak_tops_dense.int8" not in k}
    f = tmp_path / "noint8peak.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    code, _, err = run(capsys, "devices", "validate", str(f))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1
    assert "lists int8 in `precisions` but `peak_tops_dense` has no int8 peak" in lines[0]
    assert lines[0].startswith(f"error: {f}:")  # the unit's line
