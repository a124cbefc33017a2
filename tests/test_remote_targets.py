"""Deploy-target files, SSH-config aliases and remote command quoting — no network needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_sdk.errors import InputError
from edge_sdk.profiles import load_registry
from edge_sdk.remote import load_target_file, load_targets, remote_command, resolve_endpoint, resolve_target

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={**os.environ, **(env or {})})


def write(path: Path, **fields) -> Path:
    base = {"name": "dev", "host": "10.0.0.7", "profile": "jetson"}
    base.update(fields)
    path.write_text(yaml.safe_dump({k: v for k, v in base.items() if v is not None}))
    return path


@pytest.fixture(scope="module")
def reg():
    return load_registry()


def test_minimal_target_gets_defaults_and_resolves_paths(tmp_path, reg):
    key = tmp_path / "keys" / "id"
    key.parent.mkdir()
    key.write_text("x")
    t = load_target_file(write(tmp_path / "dev.yaml", identity_file="keys/id", ssh_config=None), reg)
    assert (t.python, t.workdir, t.keep_releases, t.port, t.user) == ("python3", "edge-sdk", 3, None, None)
    assert t.identity_path == str(key)  # relative to the target file, not the cwd
    assert t.source == (tmp_path / "dev.yaml").resolve()


@pytest.mark.parametrize("fields, field, expected", [
    ({"port": 70000}, "port", "less than or equal to 65535"),
    ({"keep_releases": 1}, "keep_releases", "greater than or equal to 2"),
    ({"hots": "x"}, "hots", "Extra inputs are not permitted"),
    ({"host": "-oProxyCommand=evil"}, "host", "leading '-'"),
    ({"workdir": "/"}, "workdir", "dedicated directory"),
    ({"workdir": "a\nb"}, "workdir", "control characters"),
    ({"name": "bad name"}, "name", "String should match pattern"),
])
def test_bad_field_names_file_and_field(tmp_path, reg, fields, field, expected):
    p = write(tmp_path / "bad.yaml", **fields)
    with pytest.raises(InputError) as ei:
        load_target_file(p, reg)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: field '{field}'") and expected in msg and "\n" not in msg


def test_unknown_profile_is_a_field_error_with_suggestion(tmp_path, reg):
    p = write(tmp_path / "t.yaml", profile="jetsn-orin-nano")
    with pytest.raises(InputError, match=r"t\.yaml: field 'profile': unknown device 'jetsn-orin-nano'.*closest"):
        load_target_file(p, reg)


def test_shipped_examples_validate(reg):
    targets = load_targets([REPO / "deploy_targets"], reg)
    assert {"example-jetson", "example-raspberry-pi"} <= set(targets)
    for t in targets.values():
        reg.resolve(t.profile)


def test_resolve_by_name_by_path_and_unknown(tmp_path, reg):
    d = tmp_path / "targets"
    d.mkdir()
    write(d / "a.yaml", name="alpha")
    assert resolve_target("alpha", [str(d)], reg).name == "alpha"
    assert resolve_target(str(d / "a.yaml"), None, reg).name == "alpha"
    with pytest.raises(InputError, match="unknown target 'alpah'.*closest: alpha"):
        resolve_target("alpah", [str(d)], reg)
    with pytest.raises(InputError, match="target file not found"):
        resolve_target(str(d / "nope.yaml"), None, reg)
    write(d / "b.yaml", name="alpha")
    with pytest.raises(InputError, match="duplicate target name 'alpha'"):
        resolve_target("alpha", [str(d)], reg)


def test_ssh_config_alias_is_honoured_and_target_fields_win(tmp_path):
    key = tmp_path / "id_lab"
    key.write_text("x")
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host lab-board\n  HostName 10.1.2.3\n  Port 2202\n  User ubuntu\n  IdentityFile {key}\n"
                   f"Host *\n  User nobody-else\n")
    t = load_target_file(write(tmp_path / "t.yaml", host="lab-board", ssh_config=str(cfg)))
    ep = resolve_endpoint(t)
    assert (ep.hostname, ep.port, ep.username, ep.key_filenames) == ("10.1.2.3", 2202, "ubuntu", [str(key)])
    assert ep.hostkey_name == "[10.1.2.3]:2202"
    t2 = load_target_file(write(tmp_path / "t2.yaml", host="lab-board", ssh_config=str(cfg), port=22, user="me"))
    ep2 = resolve_endpoint(t2)
    assert (ep2.port, ep2.username, ep2.hostkey_name) == (22, "me", "10.1.2.3")


def test_missing_identity_file_is_reported_at_connect_time_only(tmp_path, reg):
    t = load_target_file(write(tmp_path / "t.yaml", identity_file="nope/id"), reg)  # listing still works
    with pytest.raises(InputError, match=r"t\.yaml: field 'identity_file': file not found"):
        resolve_endpoint(t)


def test_targets_cli_lists_json_and_rejects_bad_file(tmp_path):
    d = tmp_path / "targets"
    d.mkdir()
    write(d / "a.yaml", name="alpha")
    r = cli("targets", "--targets-dir", str(d), "--json")
    assert r.returncode == 0, r.stderr
    assert [t["name"] for t in json.loads(r.stdout)] == ["alpha"]
    r = cli("targets", "--json", env={"EDGE_SDK_TARGETS": str(d)})
    assert [t["name"] for t in json.loads(r.stdout)] == ["alpha"]
    write(d / "b.yaml", name="beta", port="twenty-two")
    r = cli("targets", "--targets-dir", str(d))
    assert r.returncode == 2
    assert "b.yaml: field 'port'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


HOSTILE = ["a b", "semi;colon", "$(touch {p})", "`touch {p}`", "'single'", '"double"', "back\\slash", "new\nline",
           "*", "~", "$HOME", "-n", ""]


def test_remote_command_keeps_every_word_literal(tmp_path):
    """The exact string sent to the device's login shell, run through a real sh here: every word arrives intact."""
    pwned = tmp_path / "pwned"
    words = [w.format(p=pwned) for w in HOSTILE]
    cmd = remote_command(["python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *words],
                         cwd=str(tmp_path / "dir with space;$(x)"), env={"EDGE_X": "v a;l$(id)"})
    (tmp_path / "dir with space;$(x)").mkdir()
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == words
    assert r.stderr.startswith("__edge_sdk_pid__=")
    assert not pwned.exists()
    with pytest.raises(Exception, match="invalid environment variable name"):
        remote_command(["true"], env={"A;B": "x"})


def test_device_release_id_is_the_bundle_id():
    from edge_sdk.bundle import bundle_id
    from edge_sdk.schemas.bundle import FileEntry
    from edge_sdk.device import release as device_release

    files = {"model.onnx": "a" * 64, "tokenizer/vocab.txt": "b" * 64, "ü/x y": "c" * 64}
    entries = {k: FileEntry(sha256=v, size_bytes=1) for k, v in files.items()}
    assert device_release.release_id(files) == bundle_id(entries)
    for bad in ("../x", "/etc/passwd", "a//b", "a/./b", "x\n", "a\\b"):
        with pytest.raises(device_release.DeviceError):
            device_release.check_relpath(bad)
