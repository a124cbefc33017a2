"""Device profiles: the shipped YAMLs load, resolve and encode the facts the planner relies on; bad user files get
one clear error line (file + field), exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from edge_sdk.errors import InputError
from edge_sdk.profiles import load_registry
from edge_sdk.profiles.loader import ENV_VAR, shipped_profiles_dir

REPO = Path(__file__).resolve().parents[1]
HOST_YAML = shipped_profiles_dir() / "host.yaml"

EXPECTED_BY_CLASS = {
    "mobile": {"snapdragon-8-gen3", "tensor-g3", "apple-a17-pro", "dimensity-9300"},
    "embedded": {"jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "jetson-nano", "raspberry-pi-5",
                 "coral-dev-board", "imx8m-plus", "rk3588", "core-ultra-7-165h"},
    "automotive": {"drive-agx-orin", "sa8295p", "tda4vm"},
    "server": {"t4", "l4", "a10", "a100-80gb-x8", "h100-sxm-x8", "xeon-platinum-8480", "epyc-8534p"},
    "host": {"host"},
}
EXPECTED = set().union(*EXPECTED_BY_CLASS.values())


@pytest.fixture(scope="module")
def reg():
    return load_registry(include_env=False)


def _unit(prof, kind):
    units = [u for u in prof.compute_units if u.kind == kind]
    assert len(units) == 1, f"{prof.name}: expected one {kind} unit, got {[u.name for u in units]}"
    return units[0]


# --- the shipped set -------------------------------------------------------------------------------------------

def test_all_twenty_four_profiles_load_with_expected_names(reg):
    assert len(reg.profiles) == 24
    assert set(reg.profiles) == EXPECTED


@pytest.mark.parametrize("device_class", sorted(EXPECTED_BY_CLASS))
def test_each_class_has_its_members(reg, device_class):
    assert {p.name for p in reg.by_class(device_class)} == EXPECTED_BY_CLASS[device_class]
    assert {p.name for p in reg.select(device_class)} == EXPECTED_BY_CLASS[device_class]


def test_file_name_is_profile_name(reg):
    for name, path in reg.origin.items():
        assert path.name == f"{name}.yaml"


def test_no_alias_is_shared_or_shadows_a_name(reg):
    counts = Counter(a.lower() for p in reg.profiles.values() for a in p.aliases)
    assert [a for a, n in counts.items() if n > 1] == []
    assert not set(counts) & set(reg.profiles)


def test_every_profile_cites_sources_and_citations_point_at_real_fields(reg):
    for p in reg.profiles.values():
        assert p.sources, p.name
        ids = {s.id for s in p.sources}
        assert len(ids) == len(p.sources), f"{p.name}: duplicate source ids"
        assert p.citations, p.name
        dumped = p.model_dump(mode="json")
        for path, c in p.citations.items():
            assert c.source is None or c.source in ids, (p.name, path)
            cur = dumped
            for part in path.split("."):
                cur = cur[int(part)] if isinstance(cur, list) else cur[part]
            assert cur is not None, f"{p.name}: citation {path} points at an empty field"
        for key in ("memory_total_gb", "memory_bandwidth_gbps"):
            assert key in p.citations, f"{p.name}: {key} is not cited"


def test_every_profile_has_a_cpu_fallback_runtime(reg):
    for p in reg.profiles.values():
        cpu_units = {u.name for u in p.compute_units if u.kind == "cpu"}
        assert cpu_units, p.name
        assert any(r.unit in cpu_units for r in p.runtimes), p.name
        assert _unit(p, "cpu").peak_tops_dense.get("fp32", 0) > 0, p.name


def test_phones_have_no_ssh_and_boards_do(reg):
    for p in reg.by_class("mobile"):
        assert p.ssh is False, p.name
    for p in reg.by_class("embedded"):
        assert p.ssh is True, p.name


# --- name resolution -------------------------------------------------------------------------------------------

def test_jetson_resolves_to_orin_nano_with_a_note(reg):
    prof, note = reg.resolve("jetson")
    assert prof.name == "jetson-orin-nano"
    assert note and "alias" in note and "jetson-orin-nano" in note
    assert reg.resolve("orin-nano")[0].name == "jetson-orin-nano"
    assert reg.resolve("rpi5")[0].name == "raspberry-pi-5"
    assert reg.resolve("coral")[0].name == "coral-dev-board"
    assert reg.resolve("JETSON-NANO") == (reg.profiles["jetson-nano"], None)


def test_ambiguous_name_lists_candidates(reg):
    with pytest.raises(InputError) as ei:
        reg.resolve("orin")
    msg = str(ei.value)
    assert "ambiguous" in msg
    for cand in ("jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "drive-agx-orin"):
        assert cand in msg


def test_unknown_name_suggests_closest(reg):
    with pytest.raises(InputError) as ei:
        reg.resolve("jetsn")
    msg = str(ei.value)
    assert "unknown device 'jetsn'" in msg
    assert "jetson-orin-nano" in msg


# --- user directories: --profiles-dir and $EDGE_SDK_PROFILES ------------------------------------------------------

def _user_dir(tmp_path: Path, memory_gb: float, extra_name: str | None = None) -> Path:
    d = tmp_path / "profiles"
    d.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(HOST_YAML.read_text())
    data["memory_total_gb"] = memory_gb
    data["memory_usable_gb"] = memory_gb / 2
    (d / "host.yaml").write_text(yaml.safe_dump(data))
    if extra_name:
        data = dict(data, name=extra_name, aliases=[], display_name="My box")
        (d / f"{extra_name}.yaml").write_text(yaml.safe_dump(data))
    return d


def test_profiles_dir_overrides_and_extends(tmp_path):
    d = _user_dir(tmp_path, 64, extra_name="my-box")
    r = load_registry([d], include_env=False)
    assert r.profiles["host"].memory_total_gb == 64
    assert r.origin["host"] == d / "host.yaml"
    assert "my-box" in r.profiles and len(r.profiles) == 25


def test_env_var_overrides_and_extends(tmp_path, monkeypatch):
    d = _user_dir(tmp_path, 48, extra_name="env-box")
    monkeypatch.setenv(ENV_VAR, str(d))
    r = load_registry()
    assert r.profiles["host"].memory_total_gb == 48
    assert "env-box" in r.profiles
    # --profiles-dir comes after the environment, so it wins
    d2 = _user_dir(tmp_path / "second", 96)
    assert load_registry([d2]).profiles["host"].memory_total_gb == 96


def test_cli_show_uses_profiles_dir(tmp_path):
    d = _user_dir(tmp_path, 40)
    proc = _cli("devices", "show", "host", "--json", "--profiles-dir", str(d))
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["memory_total_gb"] == 40


# --- facts the planner relies on -------------------------------------------------------------------------------

def test_coral_edge_tpu_runs_int8_only(reg):
    p = reg.profiles["coral-dev-board"]
    tpu = _unit(p, "tpu")
    assert tpu.precisions == ["int8"]
    assert set(tpu.peak_tops_dense) == {"int8"} and tpu.peak_tops_dense["int8"] == 4
    for rt in p.runtimes:
        if rt.unit == tpu.name:
            assert rt.precisions == ["int8"] and rt.provider == "edgetpu"
    assert p.memory_usable_gb <= 0.5


def test_jetson_nano_gpu_has_no_int8_and_no_tensor_cores(reg):
    p = reg.profiles["jetson-nano"]
    gpu = _unit(p, "gpu")
    assert set(gpu.precisions) == {"fp32", "fp16"}
    assert "int8" not in gpu.peak_tops_dense and not gpu.peak_tops_sparse
    for rt in p.runtimes:
        if rt.unit == gpu.name:
            assert "int8" not in rt.precisions


def test_t4_has_no_sparsity_no_bf16(reg):
    gpu = _unit(reg.profiles["t4"], "gpu")
    assert gpu.peak_tops_sparse == {}
    assert "bf16" not in gpu.precisions and "tf32" not in gpu.precisions
    assert {"fp16", "int8", "int4"} <= set(gpu.precisions)
    assert gpu.peak_tops_dense["int8"] == 130


def test_sa8295p_htp_has_no_int4(reg):
    p = reg.profiles["sa8295p"]
    npu = _unit(p, "npu")
    assert "int4" not in npu.precisions
    assert {"int8", "int16", "fp16"} <= set(npu.precisions)
    assert all("int4" not in rt.precisions for rt in p.runtimes if rt.unit == npu.name)


def test_snapdragon_htp_precisions(reg):
    assert set(_unit(reg.profiles["snapdragon-8-gen3"], "npu").precisions) == {"int4", "int8", "int16", "fp16"}


def test_h100_node_is_per_gpu_with_eight_accelerators(reg):
    p = reg.profiles["h100-sxm-x8"]
    assert p.memory_total_gb == 80 and p.memory_usable_gb < 80
    assert p.accelerator_count == 8 and p.interconnect_bandwidth_gbps == 900
    gpu = _unit(p, "gpu")
    assert "int4" not in gpu.precisions and "fp8" in gpu.precisions
    assert gpu.peak_tops_dense["fp16"] == 989


def test_a100_node_and_single_gpus(reg):
    a100 = reg.profiles["a100-80gb-x8"]
    assert a100.accelerator_count == 8 and a100.interconnect_bandwidth_gbps == 600
    assert "int4" in _unit(a100, "gpu").precisions
    for name in ("t4", "l4", "a10"):
        p = reg.profiles[name]
        assert p.accelerator_count == 1 and p.interconnect_bandwidth_gbps is None


def test_dla_and_tidl_precisions(reg):
    for name in ("jetson-orin-nx", "jetson-agx-orin", "drive-agx-orin"):
        assert set(_unit(reg.profiles[name], "dla").precisions) == {"int8", "fp16"}
    assert "dla" not in {u.kind for u in reg.profiles["jetson-orin-nano"].compute_units}
    assert set(_unit(reg.profiles["tda4vm"], "dsp").precisions) == {"int8", "int16"}


def test_sparse_peaks_only_on_nvidia_sparse_tensor_cores(reg):
    allowed = {"jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "drive-agx-orin", "l4", "a10",
               "a100-80gb-x8", "h100-sxm-x8"}
    for p in reg.profiles.values():
        has = any(u.peak_tops_sparse for u in p.compute_units)
        assert has == (p.name in allowed), p.name


def test_orin_nano_headline_numbers(reg):
    p = reg.profiles["jetson-orin-nano"]
    gpu = _unit(p, "gpu")
    assert (p.memory_total_gb, p.memory_bandwidth_gbps, p.unified_memory) == (8, 68, True)
    assert gpu.peak_tops_dense["int8"] == 20 and gpu.peak_tops_sparse["int8"] == 40


def test_x86_cpu_profiles_isa_and_openvino_precisions(reg):
    spr, siena = reg.profiles["xeon-platinum-8480"], reg.profiles["epyc-8534p"]
    assert {"avx512_vnni", "amx_int8", "amx_bf16"} <= set(spr.isa_features)
    assert {"avx512_vnni", "avx512_bf16"} <= set(siena.isa_features)
    assert not {"amx_int8", "amx_bf16", "avx512_fp16"} & set(siena.isa_features)
    for p in (spr, siena):
        ov = next(r for r in p.runtimes if r.name == "openvino")
        assert (ov.provider, ov.format, set(ov.precisions)) == ("CPU", "openvino", {"fp32", "bf16", "int8"})
        assert _unit(p, "cpu").peak_tops_dense["bf16"] > _unit(p, "cpu").peak_tops_dense["fp32"]
    assert _unit(spr, "cpu").peak_tops_dense["int8"] > 10 * _unit(siena, "cpu").peak_tops_dense["int8"]  # AMX


def test_core_ultra_has_cpu_gpu_npu_each_with_an_openvino_device(reg):
    p = reg.profiles["core-ultra-7-165h"]
    assert {u.kind for u in p.compute_units} == {"cpu", "gpu", "npu"}
    ov = {r.provider: r for r in p.runtimes if r.name == "openvino"}
    assert {k: ov[k].unit for k in ov} == {"CPU": "cpu", "GPU": "gpu", "NPU": "npu"}
    assert set(ov["NPU"].precisions) == set(ov["GPU"].precisions) == {"fp16", "int8"}
    assert "bf16" not in ov["CPU"].precisions and "avx512f" not in p.isa_features
    assert _unit(p, "npu").peak_tops_dense["int8"] == 10.6 and _unit(p, "gpu").peak_tops_dense["int8"] == 18.8


def test_rk3588_npu_runs_rknn_only(reg):
    p = reg.profiles["rk3588"]
    npu = _unit(p, "npu")
    assert npu.peak_tops_dense["int8"] == 6 and npu.count == 3
    assert [(r.name, r.format, r.provider) for r in p.runtimes if r.unit == npu.name] == [("rknn", "rknn", "rknpu2")]
    assert {(r.name, r.provider) for r in p.runtimes if r.unit == "cpu"} == {("onnxruntime", "CPUExecutionProvider"),
                                                                              ("litert", "xnnpack")}


# --- bad input through the real CLI ----------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def _host() -> dict:
    return yaml.safe_load(HOST_YAML.read_text())


def _mut(fn):
    def make() -> str:
        d = _host()
        fn(d)
        return yaml.safe_dump(d, sort_keys=False)
    return make


def _set(**kw):
    return _mut(lambda d: d.update(kw))


def _del(key):
    return _mut(lambda d: d.pop(key))


# (case id, file content (str/bytes/callable), substrings the single error line must contain besides the file name)
BAD_FILES = [
    ("malformed-yaml", "name: host\nmemory_total_gb: [8\n", ["malformed YAML", "line"]),
    ("unknown-field", _set(memory_gbs=8), ["'memory_gbs'", "Extra inputs"]),
    ("missing-field", _del("memory_bandwidth_gbps"), ["'memory_bandwidth_gbps'", "required"]),
    ("wrong-type", _set(memory_total_gb="eight"), ["'memory_total_gb'", "'eight'"]),
    ("unit-in-value", _set(memory_total_gb="8GB"), ["'memory_total_gb'", "'8GB'"]),
    ("negative-memory", _set(memory_usable_gb=-1), ["'memory_usable_gb'", "greater than 0"]),
    ("usable-exceeds-total", _set(memory_usable_gb=100), ["memory_usable_gb", "exceeds memory_total_gb"]),
    ("unknown-precision", _mut(lambda d: d["compute_units"][0]["precisions"].append("int3")),
     ["'compute_units.0.precisions.2'", "'int3'"]),
    ("runtime-unknown-unit", _mut(lambda d: d["runtimes"][0].update(unit="npu")),
     ["runtime 'onnxruntime/CPUExecutionProvider'", "unknown compute unit 'npu'"]),
    ("citation-unknown-source", _mut(lambda d: d["citations"]["memory_total_gb"].update(source="Z9")),
     ["citation for 'memory_total_gb'", "'Z9'"]),
    ("bad-confidence", _mut(lambda d: d["citations"]["memory_total_gb"].update(confidence="sure")),
     ["'citations.memory_total_gb.confidence'", "'sure'"]),
    ("peak-without-precision", _mut(lambda d: d["compute_units"][0]["peak_tops_dense"].update(fp16=1.0)),
     ["'compute_units.0'", "['fp16']", "precisions"]),
    ("yaml-list", "- name: host\n- name: other\n", ["expected a YAML mapping", "list"]),
    ("empty-file", "", ["expected a YAML mapping"]),
    ("not-utf8", b"name: h\xff\xfest\n", ["not a UTF-8"]),
    ("multi-gpu-without-link", _set(accelerator_count=8), ["interconnect_bandwidth_gbps"]),
    ("bad-name", _set(name="My_Host"), ["'name'", "'My_Host'"]),
    ("power-inverted", _set(power_w={"min_w": 10, "max_w": 5}), ["'power_w'", "max_w"]),
]


def _write(path: Path, content) -> Path:
    content = content() if callable(content) else content
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _assert_one_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line


@pytest.mark.parametrize("case,content,needles", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_validate_bad_file(tmp_path, case, content, needles):
    f = _write(tmp_path / f"{case}.yaml", content)
    _assert_one_error(_cli("devices", "validate", str(f)), str(f), *needles)


def test_bad_file_in_profiles_dir_is_named(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    f = _write(d / "broken.yaml", _set(memory_total_gb="eight"))
    _assert_one_error(_cli("devices", "--profiles-dir", str(d)), str(f), "'memory_total_gb'")
    _assert_one_error(_cli("devices", "show", "host", "--profiles-dir", str(d)), str(f), "'memory_total_gb'")


def test_duplicate_names_in_one_profiles_dir(tmp_path):
    d = tmp_path / "dups"
    d.mkdir()
    _write(d / "a.yaml", _set(memory_total_gb=32))
    _write(d / "b.yaml", _set(memory_total_gb=48))
    _assert_one_error(_cli("devices", "--profiles-dir", str(d)), str(d / "b.yaml"), "'name'",
                      "duplicate profile name 'host'", str(d / "a.yaml"))


def test_missing_profiles_dir(tmp_path):
    d = tmp_path / "nope"
    _assert_one_error(_cli("devices", "--profiles-dir", str(d)), str(d), "does not exist")


def test_show_unknown_device():
    _assert_one_error(_cli("devices", "show", "jetsn"), "unknown device 'jetsn'", "jetson-orin-nano")


def test_show_ambiguous_device():
    _assert_one_error(_cli("devices", "show", "orin"), "ambiguous", "jetson-orin-nx", "drive-agx-orin")


def test_validate_all_shipped_files_ok():
    files = sorted(str(p) for p in shipped_profiles_dir().glob("*.yaml"))
    proc = _cli("devices", "validate", *files)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ok ") == 24


def test_devices_table_and_alias_note():
    proc = _cli("devices", "--class", "embedded")
    assert proc.returncode == 0, proc.stderr
    assert "jetson-orin-nano" in proc.stdout and "t4" not in proc.stdout.split()
    proc = _cli("devices", "show", "jetson", "--json")
    assert proc.returncode == 0 and yaml.safe_load(proc.stdout)["name"] == "jetson-orin-nano"
    assert "alias for 'jetson-orin-nano'" in proc.stderr
