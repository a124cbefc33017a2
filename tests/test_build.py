"""`edge-sdk build` end to end on real models, bundle verification, tamper and bad-input cases."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge_sdk import build
from edge_sdk.bundle import MANIFEST_NAME, extract_archive, pack_archive, verify_bundle
from edge_sdk.errors import InputError
from edge_sdk.planner import load_plan

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"


def cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def one_error_line(r) -> str:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    errs = [l for l in lines if l.startswith("error:")]
    assert len(errs) == 1, r.stderr
    return errs[0]


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "tiny"
    res = build(str(CONFIGS / "tiny-bert.json"), device="host", out_dir=out, eval_samples=24, runtime="onnxruntime")
    return res


def test_tiny_bert_build_writes_a_verifiable_bundle(tiny_bundle):
    res = tiny_bundle
    m = verify_bundle(res.path)
    assert m.primary.format == "onnx" and m.plan.device == "host"
    assert (res.path / "edge_device" / "__main__.py").is_file()
    assert "sample_inputs.npz" in m.files and any(k.startswith("tokenizer/") for k in m.files)
    assert m.quality is not None and m.quality.passed and m.quality.kind == "measured"
    assert {"torch", "onnx", "onnxruntime", "edge-sdk"} <= set(m.versions)
    assert [i.name for i in m.primary.inputs][:2] == ["input_ids", "attention_mask"]
    assert m.primary.inputs[0].shape[0] != 1  # dynamic batch axis
    assert verify_bundle(res.archive).files == m.files


def test_built_onnx_matches_pytorch(tiny_bundle, tmp_path):
    """The fp32 export of the same random model reproduces PyTorch; the quantized artifact stays close."""
    import numpy as np

    from edge_sdk.builder.sources import load_for_build
    from edge_sdk.quality import onnx_embed_fn, torch_embed_fn

    loaded = load_for_build(str(CONFIGS / "tiny-bert.json"), corpus=["a few words of text"])
    from edge_sdk.passes.export_onnx import export_onnx

    res = export_onnx(loaded.model, tmp_path / "m.onnx", model_kind="text", tokenizer=loaded.tokenizer)
    texts = ["short one", "a somewhat longer sentence about boards and models", "x"]
    ref = torch_embed_fn(loaded.model, loaded.tokenizer)(texts)
    got = onnx_embed_fn(res.path, loaded.tokenizer)(texts)
    assert np.abs(ref - got).max() < 1e-4  # stated tolerance for fp32 export


def test_tampered_bundle_is_refused(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, copy)
    with open(copy / "model.onnx", "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    r = cli("bundle", "verify", str(copy))
    assert r.returncode == 2
    assert "model.onnx" in one_error_line(r) and "sha256" in r.stderr
    (copy / "extra.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="extra.bin"):
        verify_bundle(copy)


def _archive_with(tmp_path: Path, bundle: Path, add) -> Path:
    arc = tmp_path / "bad.edgepkg"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(bundle / MANIFEST_NAME, arcname=MANIFEST_NAME)
        add(tar)
    return arc


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "oversize"])
def test_unsafe_archives_are_refused_before_extraction(tiny_bundle, tmp_path, kind):
    def add(tar: tarfile.TarFile):
        if kind in ("dotdot", "absolute"):
            info = tarfile.TarInfo("../evil.txt" if kind == "dotdot" else "/tmp/evil-edge-sdk.txt")
            data = b"pwned"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        elif kind in ("symlink", "hardlink"):
            info = tarfile.TarInfo("model.onnx")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:  # far larger than the manifest claims
            info = tarfile.TarInfo("model.onnx")
            info.size = 64 << 20
            tar.addfile(info, io.BytesIO(bytes(info.size)))

    arc = _archive_with(tmp_path, tiny_bundle.path, add)
    dest = tmp_path / "out"
    r = cli("bundle", "verify", str(arc))
    assert r.returncode == 2
    line = one_error_line(r)
    assert "bad.edgepkg" in line
    with pytest.raises(InputError):
        extract_archive(arc, dest)
    assert not dest.exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/evil-edge-sdk.txt").exists()


def test_archive_round_trip(tiny_bundle, tmp_path):
    arc = pack_archive(tiny_bundle.path, tmp_path / "x.edgepkg")
    out = extract_archive(arc, tmp_path / "x")
    assert verify_bundle(out).files == verify_bundle(tiny_bundle.path).files


def test_plan_that_prunes_more_heads_than_exist(tmp_path):
    r = cli("plan", "--model", str(CONFIGS / "tiny-bert.json"), "--device", "host", "--runtime", "onnxruntime",
            "-o", str(tmp_path / "p.json"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    data["passes"].insert(0, {"kind": "structured_prune", "head_ratio": 0.9, "ffn_ratio": 0.0, "drop_layers": 0})
    (tmp_path / "p.json").write_text(json.dumps(data))
    r = cli("build", "--model", str(CONFIGS / "tiny-bert.json"), "--plan", str(tmp_path / "p.json"),
            "-o", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "head" in one_error_line(r)
    assert not (tmp_path / "b").exists()


def test_model_dir_without_weights(tmp_path):
    d = tmp_path / "noweights"
    d.mkdir()
    shutil.copy(CONFIGS / "tiny-bert.json", d / "config.json")
    r = cli("build", "--model", str(d), "-o", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "noweights" in one_error_line(r)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\x00\x01\x02\xff\xfe binary"])
def test_bad_eval_data(tmp_path, content):
    f = tmp_path / "eval.txt"
    f.write_bytes(content)
    r = cli("build", "--model", str(CONFIGS / "tiny-bert.json"), "--eval-data", str(f), "-o", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "eval.txt" in one_error_line(r)
    assert not (tmp_path / "b").exists()


def test_vit_from_config_builds(tmp_path):
    res = build(str(CONFIGS / "tiny-vit.json"), device="host", out_dir=tmp_path / "vit", eval_samples=8,
                runtime="onnxruntime", archive=False)
    m = verify_bundle(res.path)
    assert m.primary.inputs[0].name == "pixel_values"
    assert m.quality.passed and "image" in m.preprocessing


@pytest.mark.slow
def test_minilm_end_to_end_for_the_host(tmp_path):
    r = cli("build", "--model", "minilm", "--device", "host", "--runtime", "onnxruntime", "--eval-samples", "48",
            "-o", str(tmp_path / "minilm"), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    m = out["manifest"]
    assert m["plan"]["precision"] == "int8_dynamic"
    cos = {x["name"]: x["value"] for x in m["quality"]["metrics"]}
    assert cos["mean_cosine"] >= 0.98
    size = m["files"]["model.onnx"]["size_bytes"]
    assert size < 90.9e6 / 3.5  # int8: about 4x smaller than fp32


def test_build_with_pruning_and_recovery(tmp_path, tiny_bundle):
    """A plan with structured pruning + label-free distillation: the bundle records what was kept and is smaller."""
    r = cli("plan", "--model", str(CONFIGS / "tiny-bert.json"), "--device", "host", "--runtime", "onnxruntime",
            "-o", str(tmp_path / "p.json"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    data["passes"] = [{"kind": "structured_prune", "head_ratio": 0.5, "ffn_ratio": 0.25, "drop_layers": 0},
                      {"kind": "distill", "max_steps": 4, "batch_size": 8, "max_length": 32}] + \
        [p for p in data["passes"] if p["kind"] in ("export_onnx", "quantize_onnx")]
    (tmp_path / "p.json").write_text(json.dumps(data))
    res = build(str(CONFIGS / "tiny-bert.json"), plan=load_plan(tmp_path / "p.json"), out_dir=tmp_path / "pruned",
                eval_samples=16, max_quality_drop=0.9, archive=False, calibration_samples=64)
    m = verify_bundle(res.path)
    assert "pruning.json" in m.files
    kept = json.loads((res.path / "pruning.json").read_text())
    assert kept and "family" in kept
    assert any("distill" in line for line in m.build_log)
    unpruned = verify_bundle(tiny_bundle.path).files["model.onnx"].size_bytes
    assert m.files["model.onnx"].size_bytes < unpruned


def test_build_runs_the_plan_it_is_given_without_planning_or_inspecting(tmp_path, monkeypatch):
    """A Plan carries its model source and ModelSpec: the build stage neither re-plans nor re-inspects."""
    import edge_sdk
    import edge_sdk.modelspec
    import edge_sdk.modelspec.inspect as mi
    import edge_sdk.planner
    import edge_sdk.planner.search as ps

    plans = edge_sdk.plan(str(CONFIGS / "tiny-bert.json"), device="host", runtime="onnxruntime")
    best = plans.best
    assert best.model_spec is not None and best.model == str(CONFIGS / "tiny-bert.json")

    def forbidden(*a, **k):
        raise AssertionError("build re-planned or re-inspected the model")

    monkeypatch.setattr(ps, "plan_for_profile", forbidden)
    monkeypatch.setattr(mi, "inspect_model", forbidden)
    monkeypatch.setattr(edge_sdk.modelspec, "inspect_model", forbidden)
    monkeypatch.setattr(edge_sdk.planner, "plan_for_profile", forbidden)
    res = build(best, out_dir=tmp_path / "b", eval_samples=8, archive=False)
    m = verify_bundle(res.path)
    assert m.plan.summary() == best.summary() and [p.kind for p in m.plan.passes] == [p.kind for p in best.passes]
    assert res.attempts and res.attempts[0].passed
