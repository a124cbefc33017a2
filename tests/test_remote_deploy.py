"""Deploys against the real loopback sshd: atomic releases, skip/reuse of files, tamper detection, rollback, pruning,
hostile paths, and a connection cut mid-upload by a TCP relay."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from edge_sdk.bundle import pack_archive
from edge_sdk.errors import RemoteError
from edge_sdk.profiles import load_registry
from edge_sdk.remote import deploy, load_target_file, rollback, verify_release

pytestmark = pytest.mark.ssh
REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def current(wd: Path) -> str | None:
    link = wd / "current"
    return os.readlink(link).split("/")[-1] if link.is_symlink() else None


def releases(wd: Path) -> list[str]:
    return sorted(p.name for p in (wd / "releases").iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def reg():
    return load_registry()


def test_deploy_cli_then_redeploy_sends_nothing(sshd, bundle_factory, tmp_path):
    b = bundle_factory("b1", big_mb=8)
    t = sshd.write_target(tmp_path, "dep")
    wd = sshd.workdir_path(t)
    r = cli("deploy", str(b), "--target", str(t), "--json")
    assert r.returncode == 0, r.stderr
    rel = json.loads(r.stdout)
    manifest = json.loads((b / "manifest.json").read_text())
    assert rel["files_total"] == rel["files_sent"] == len(manifest["files"]) + 1
    assert rel["bytes_sent"] == rel["bytes_total"] > 8_000_000 and rel["verified_files"] == rel["files_total"]
    assert rel["previous_release"] is None and rel["switched"] is True
    assert rel["path"] == str(wd / "releases" / rel["release_id"])
    assert os.readlink(wd / "current") == f"releases/{rel['release_id']}"  # relative: the workdir may move
    for relpath in [*manifest["files"], "manifest.json"]:
        assert (wd / "current" / relpath).read_bytes() == (b / relpath).read_bytes()
    st = (wd / "current" / "model.onnx").stat()
    if sshd.user != "root":  # files belong to the login user, not to whoever runs the deploy
        import pwd

        assert pwd.getpwuid(st.st_uid).pw_name == sshd.user
    hist = json.loads((wd / "releases.json").read_text())
    assert hist["stack"] == [rel["release_id"]] and hist["events"][-1]["action"] == "deploy"

    agains = [deploy(b, load_target_file(t)) for _ in range(3)]
    for again in agains:
        assert (again.files_sent, again.bytes_sent, again.files_present) == (0, 0, rel["files_total"])
        assert again.switched is False and again.release_id == rel["release_id"]
        assert again.previous_release == rel["release_id"] and again.verified_files == rel["files_total"]
    # verify locally + connect + ONE remote command; best of 3 so other load on a shared machine does not decide
    assert min(a.seconds for a in agains) < 1.0, [a.seconds for a in agains]
    assert not [p for p in (wd / "releases").iterdir() if p.name.startswith(".incoming")]


def test_table_output_and_archive_bundle(sshd, bundle_factory, tmp_path):
    b = bundle_factory("b2", big_mb=1)
    pkg = pack_archive(b, tmp_path / "b2.edgepkg")
    t = sshd.write_target(tmp_path, "pkg")
    r = cli("deploy", str(pkg), "--target", str(t))
    assert r.returncode == 0, r.stderr
    assert "release " in r.stdout and "sent" in r.stdout and "verified on the device" in r.stdout
    assert (sshd.workdir_path(t) / "current" / "model.onnx").read_bytes() == (b / "model.onnx").read_bytes()


def test_tampered_file_is_detected_and_redeploy_resends_only_it(sshd, bundle_factory, tmp_path):
    b = bundle_factory("b3", big_mb=2)
    t = sshd.write_target(tmp_path, "tamper")
    wd = sshd.workdir_path(t)
    rel = deploy(b, load_target_file(t))
    assert cli("targets", "verify", str(t)).returncode == 0
    victim = wd / "current" / "tokenizer" / "vocab.txt"
    victim.write_text("tampered")
    r = cli("targets", "verify", str(t))
    assert r.returncode == 5 and "modified: tokenizer/vocab.txt" in r.stderr and "Traceback" not in r.stderr
    again = deploy(b, load_target_file(t))
    assert (again.files_sent, again.release_id, again.switched) == (1, rel.release_id, False)
    assert victim.read_bytes() == (b / "tokenizer" / "vocab.txt").read_bytes()
    assert verify_release(load_target_file(t)).ok


def test_new_bundle_reuses_shared_files_then_rollback(sshd, bundle_factory, tmp_path):
    t = sshd.write_target(tmp_path, "roll")
    target = load_target_file(t)
    wd = sshd.workdir_path(t)
    a = deploy(bundle_factory("a", big_mb=2, seed=1), target)
    # same vocab/runner, new model: only the model and the manifest travel; the rest is hard-linked on the device
    b_dir = bundle_factory("b", big_mb=2, seed=2)
    b = deploy(b_dir, target)
    assert b.release_id != a.release_id and b.previous_release == a.release_id
    assert b.files_linked >= 2 and b.files_sent == b.files_total - b.files_linked
    assert current(wd) == b.release_id
    r = cli("rollback", "--target", str(t), "--json")
    assert r.returncode == 0, r.stderr
    rb = json.loads(r.stdout)
    assert (rb["previous_release"], rb["release_id"]) == (b.release_id, a.release_id)
    assert current(wd) == a.release_id
    with pytest.raises(RemoteError, match="no previous release to roll back to"):
        rollback(target)
    assert current(wd) == a.release_id
    rb2 = rollback(target, to=b.release_id)  # roll forward explicitly
    assert current(wd) == b.release_id == rb2.release_id
    # a damaged file whose good copy lives in another release is repaired on the device, without sending it
    (wd / "current" / "tokenizer" / "vocab.txt").unlink()
    fixed = deploy(b_dir, target)
    assert (fixed.release_id, fixed.files_sent, fixed.files_linked) == (b.release_id, 0, 1)
    assert verify_release(target).ok


def test_keep_releases_prunes_but_never_current_or_previous(sshd, bundle_factory, tmp_path):
    t = sshd.write_target(tmp_path, "prune", keep_releases=2)
    target = load_target_file(t)
    wd = sshd.workdir_path(t)
    ids = [deploy(bundle_factory(f"p{i}", big_mb=0.2, seed=10 + i), target).release_id for i in range(4)]
    assert releases(wd) == sorted(ids[-2:])
    assert current(wd) == ids[-1]
    rollback(target)
    assert current(wd) == ids[-2]
    last = deploy(bundle_factory("p9", big_mb=0.2, seed=99), target)
    assert last.previous_release == ids[-2] and ids[-2] in releases(wd) and last.release_id in releases(wd)


def test_hostile_workdir_stays_literal(sshd, bundle_factory, tmp_path):
    tag = uuid.uuid4().hex[:8]
    pwned = f"/tmp/pwned-{tag}"
    wd = f"/tmp/edge sdk {tag};touch {pwned}$(id)`id`'q\""
    t = sshd.write_target(tmp_path, "hostile", workdir=wd)
    try:
        rel = deploy(bundle_factory("h", big_mb=0.2), load_target_file(t))
        assert Path(wd, "current", "manifest.json").is_file() and rel.path == f"{wd}/releases/{rel.release_id}"
        assert not [p for p in os.listdir("/tmp") if p.startswith(f"pwned-{tag}")]
    finally:
        subprocess.run(["rm", "-rf", f"/tmp/edge sdk {tag};touch "])


def test_bundle_for_another_device_or_corrupt_bundle_is_refused_before_connecting(sshd, bundle_factory, tmp_path):
    t = sshd.write_target(tmp_path, "refuse")
    wd = sshd.workdir_path(t)
    r = cli("deploy", str(bundle_factory("jet", big_mb=0.1, device="jetson-orin-nano")), "--target", str(t))
    assert r.returncode == 2 and "built for device 'jetson-orin-nano'" in r.stderr and "--force" in r.stderr
    bad = bundle_factory("bad", big_mb=0.1)
    (bad / "model.onnx").write_bytes(b"corrupted")
    r = cli("deploy", str(bad), "--target", str(t))
    assert r.returncode == 2 and "model.onnx" in r.stderr and "Traceback" not in r.stderr
    assert not wd.exists()  # nothing was written on the device


class CuttingRelay:
    """127.0.0.1 TCP relay to sshd that drops the connection after `cut_after` client→server bytes.

    A real cut at the TCP level: paramiko and sshd see a dead socket mid-SFTP-write, as on a flaky link.
    """

    def __init__(self, port: int, cut_after: int):
        self.port, self.cut_after, self.sent = port, cut_after, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listen_port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port))
            self.socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    self.sent += len(data)
                    if self.sent > self.cut_after:
                        self.close_all()
                        return
                dst.sendall(data)
        except OSError:
            pass
        self.close_all()

    def close_all(self) -> None:
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self) -> None:
        self.listener.close()
        self.close_all()


def test_connection_cut_mid_upload_keeps_current_and_retry_completes(sshd, bundle_factory, tmp_path):
    t = sshd.write_target(tmp_path, "direct")
    wd = sshd.workdir_path(t)
    first = deploy(bundle_factory("c1", big_mb=0.5, seed=5), load_target_file(t))
    relay = CuttingRelay(sshd.port, cut_after=2_000_000)
    try:
        kh = tmp_path / "known_hosts_relay"
        kh.write_text(sshd.server.known_hosts_entry(port=relay.listen_port) + "\n")
        t_cut = sshd.write_target(tmp_path / "cut", "cut", port=relay.listen_port, known_hosts=str(kh),
                                  workdir=str(wd))
        b2 = bundle_factory("c2", big_mb=6, seed=6)
        r = cli("deploy", str(b2), "--target", str(t_cut))
        assert relay.sent > relay.cut_after  # the relay really cut it, mid-upload
    finally:
        relay.stop()
    assert r.returncode == 5, (r.stdout, r.stderr)
    assert f"still points at {first.release_id}" in r.stderr and "Traceback" not in r.stderr
    assert current(wd) == first.release_id and releases(wd) == [first.release_id]
    assert [p for p in (wd / "releases").iterdir() if p.name.startswith(".incoming")]  # the abandoned upload
    again = deploy(b2, load_target_file(t))
    assert current(wd) == again.release_id and again.previous_release == first.release_id
    assert verify_release(load_target_file(t)).ok
    assert not [p for p in (wd / "releases").iterdir() if p.name.startswith(".incoming")]


def test_manifest_path_escaping_the_bundle_is_refused_locally(sshd, bundle_factory, tmp_path):
    b = bundle_factory("esc", big_mb=0.1)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the device")
    m = json.loads((b / "manifest.json").read_text())
    from edge_sdk.bundle import sha256_file

    m["files"]["../secret.txt"] = {"sha256": sha256_file(outside), "size_bytes": outside.stat().st_size}
    (b / "manifest.json").write_text(json.dumps(m))
    t = sshd.write_target(tmp_path, "esc")
    r = cli("deploy", str(b), "--target", str(t))
    # the manifest schema itself refuses it, before deploy's own path check would
    assert r.returncode == 2 and "'../secret.txt' is not a relative path inside the bundle" in r.stderr, r.stderr
    assert not sshd.workdir_path(t).exists()
