"""Bundle defects found by adversarial trials (issue 14): a hostile or odd bundle gets one line naming the user's
path, exit 2, never a traceback, and links are refused in directories as they are in archives. Small bundles made
by the real writer (conftest.make_bundle); no model is built."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from conftest import make_bundle
from edge_sdk.bundle import BundleError, pack_archive, verify_bundle
from edge_sdk.cli import main


def run(capsys, *args: str) -> tuple[int, str]:
    """The real entry point in-process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return exc.value.code, err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def bundle(tmp_path) -> Path:
    return make_bundle(tmp_path / "b", big_mb=0.01)


def _archive(src: Path, dest: Path, *, manifest=None, arc_prefix: str = "", extra=None) -> Path:
    """src packed as a gzip'd tar; `manifest` replaces manifest.json's content; names get `arc_prefix`."""
    with tarfile.open(dest, "w:gz") as tar:
        if arc_prefix:
            tar.add(src, arcname=".", recursive=False)
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src).as_posix()
            if p.is_dir():
                tar.add(p, arcname=arc_prefix + rel, recursive=False)
                continue
            data = p.read_bytes() if rel != "manifest.json" or manifest is None else json.dumps(manifest).encode()
            info = tarfile.TarInfo(arc_prefix + rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return dest


def _manifest(b: Path) -> dict:
    return json.loads((b / "manifest.json").read_text())


@pytest.mark.parametrize("case,mutate,needle", [
    ("files-list", lambda m: m.update(files=list(m["files"])), "'files'"),
    ("entry-string", lambda m: m["files"].update({"model.onnx": "abc"}), "'files.model.onnx'"),
    ("size-not-int", lambda m: m["files"]["model.onnx"].update(size_bytes="abc"), "'files.model.onnx.size_bytes'"),
    ("not-an-object", lambda m: None, "expected a JSON object"),
])
def test_bad_manifest_in_archive_is_one_line_for_verify_and_deploy(capsys, bundle, tmp_path, case, mutate, needle):
    m = _manifest(bundle)
    mutate(m)
    arc = _archive(bundle, tmp_path / f"{case}.edgepkg", manifest=[1, 2] if case == "not-an-object" else m)
    code, err = run(capsys, "bundle", "verify", str(arc))
    line = one_error(err)
    assert code == 2 and f"{arc}: manifest.json" in line and needle in line, line
    from edge_sdk.remote.deploy import open_bundle  # what `deploy` opens a bundle with, before any connection

    with pytest.raises(BundleError, match="manifest.json"):
        with open_bundle(arc):
            pass


def test_tar_of_dot_is_accepted_but_links_and_dotdot_still_refused(bundle, tmp_path):
    """`tar -C DIR -czf X .` names members ./manifest.json, ./model.onnx, ..."""
    ok = _archive(bundle, tmp_path / "dot.edgepkg", arc_prefix="./")
    assert verify_bundle(ok).files == verify_bundle(bundle).files
    link = tarfile.TarInfo("./tokenizer/evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(BundleError, match="is a link"):
        verify_bundle(_archive(bundle, tmp_path / "link.edgepkg", arc_prefix="./", extra=[link]))
    up = tarfile.TarInfo("./../evil.txt")
    with pytest.raises(BundleError, match=r"contains '\.\.'"):
        verify_bundle(_archive(bundle, tmp_path / "up.edgepkg", arc_prefix="./", extra=[up]))
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_symlink_inside_a_bundle_directory_is_refused(capsys, bundle, tmp_path, kind):
    secret = tmp_path / "secret"
    if kind == "file":
        secret.write_text("not for the device")
        os.symlink(secret, bundle / "tokenizer" / "leak.txt")
    else:
        secret.mkdir()
        os.symlink(secret, bundle / "leakdir")
    code, err = run(capsys, "bundle", "verify", str(bundle))
    line = one_error(err)
    assert code == 2 and str(bundle) in line and "symbolic link" in line, line
    with pytest.raises(BundleError, match="symbolic link"):
        pack_archive(bundle, tmp_path / "x.edgepkg")
    assert not (tmp_path / "x.edgepkg").exists()
    from edge_sdk.benchmark.local import bench_local

    with pytest.raises(BundleError, match="symbolic link") as exc:
        bench_local(bundle, iterations=1, warmup=0)
    assert str(exc.value).startswith(str(bundle))


def test_messages_name_the_users_path_not_a_temporary_copy(bundle, tmp_path):
    from edge_sdk.benchmark.local import bench_local

    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError) as exc:
        bench_local(bundle, iterations=1, warmup=0)
    assert str(exc.value) == f"{bundle}: no manifest.json; not an edge-sdk bundle"
    # an archive whose file has the manifest's size but other content: found after extraction, named by the archive
    good = make_bundle(tmp_path / "g", big_mb=0.01)
    data = bytearray((good / "model.onnx").read_bytes())
    data[0] ^= 0xFF
    (good / "model.onnx").write_bytes(bytes(data))
    arc = _archive(good, tmp_path / "tampered.edgepkg")
    with pytest.raises(BundleError) as exc:
        verify_bundle(arc)
    msg = str(exc.value)
    assert msg.startswith(f"{arc}: bundle verification failed: model.onnx: sha256") and "edge-sdk-verify-" not in msg
