"""Shared fixtures. `sshd`: a REAL OpenSSH server on 127.0.0.1 (no SSH mocks anywhere); `make_bundle`: a small
directory bundle written by the real bundle writer.

The server is session-scoped (starting sshd costs ~0.3 s). When running as root, logins use a dedicated non-root
user (`edgesdk-test`, created once with useradd, password field '*' so key logins work with UsePAM no, login shell
/bin/sh) — deploying as an unprivileged user is what happens on real devices, and it keeps the machine's root
shell start-up files out of every command. Without root the current user logs in to its own sshd.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

TEST_USER = "edgesdk-test"


def _ensure_test_user() -> tuple[str, Path, str]:
    """(user, home, note): the non-root login user, or the current user with the reason we could not make one."""
    me = getpass.getuser()
    if os.geteuid() != 0:
        return me, Path.home(), "not root: logging in as the current user"
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        if not shutil.which("useradd"):
            return me, Path.home(), "useradd not found: logging in as root"
        r = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], capture_output=True,
                           text=True)
        if r.returncode not in (0, 9):  # 9: already exists (another test session raced us)
            return me, Path.home(), f"useradd failed ({r.stderr.strip()}): logging in as root"
        pw = pwd.getpwnam(TEST_USER)
    # A locked account ('!' in shadow) is refused by sshd when UsePAM is off; '*' = no password, keys allowed.
    subprocess.run(["usermod", "-p", "*", TEST_USER], capture_output=True)
    home = Path(pw.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True)
        os.chown(home, pw.pw_uid, pw.pw_gid)
    return TEST_USER, home, f"logging in as non-root user {TEST_USER}"


@dataclass
class SshServer:
    """What a test needs to reach the loopback sshd, plus a helper that writes a target YAML for it."""

    server: object  # edge_sdk.remote.loopback.LoopbackSshd
    host: str
    port: int
    user: str
    home: Path
    client_key: Path
    known_hosts: Path
    ssh_config: Path  # empty: keeps the developer's ~/.ssh/config out of tests
    directory: Path
    note: str
    _made: list[Path] = field(default_factory=list)

    def target_fields(self, name: str = "loopback", **overrides) -> dict:
        fields = {
            "schema_version": 1, "name": name, "host": self.host, "port": self.port, "user": self.user,
            "identity_file": str(self.client_key), "known_hosts": str(self.known_hosts),
            "ssh_config": str(self.ssh_config), "profile": "host", "python": "python3",
            "workdir": f"edge-sdk-test-{uuid.uuid4().hex[:8]}", "keep_releases": 3, "connect_timeout_s": 10,
            "command_timeout_s": 60,
        }
        fields.update(overrides)
        return {k: v for k, v in fields.items() if v is not None}

    def write_target(self, directory: Path, name: str = "loopback", **overrides) -> Path:
        """Write `directory/<name>.yaml`; a field given as None is left out (its default applies)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.yaml"
        fields = self.target_fields(name, **overrides)
        path.write_text(yaml.safe_dump(fields, sort_keys=False))
        wd = fields.get("workdir")
        if wd:
            self._made.append(Path(wd) if os.path.isabs(wd) else self.home / wd)
        return path

    def workdir_path(self, target_yaml: Path) -> Path:
        wd = yaml.safe_load(target_yaml.read_text())["workdir"]
        return Path(wd) if os.path.isabs(wd) else self.home / wd


@pytest.fixture(scope="session")
def sshd():
    from edge_sdk.remote.loopback import SshdUnavailable, start_loopback_sshd

    user, home, note = _ensure_test_user()
    # sshd reads authorized_keys as the login user, so the server dir must be traversable: not under pytest's 0700 tmp
    d = Path(tempfile.mkdtemp(prefix="edge-sdk-sshd-"))
    os.chmod(d, 0o755)
    try:
        srv = start_loopback_sshd(d / "server", [user])
    except SshdUnavailable as exc:
        shutil.rmtree(d, ignore_errors=True)
        print(f"\n[sshd] skipping SSH tests: {exc}")
        pytest.skip(f"no OpenSSH server: {exc}")
    # An ssh-agent of the developer would make auth tests pass or fail for reasons outside the test.
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    (d / "ssh_config").write_text("")
    print(f"\n[sshd] 127.0.0.1:{srv.port} ({note})")
    s = SshServer(server=srv, host=srv.host, port=srv.port, user=user, home=home, client_key=srv.client_key,
                  known_hosts=srv.known_hosts, ssh_config=d / "ssh_config", directory=d, note=note)
    try:
        yield s
    finally:
        srv.stop()
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent
        for p in s._made:
            shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def root_loopback_sshd(work: Path):
    """A private OpenSSH server on loopback that `root` logs in to (skips the test when there is no sshd): for tests
    that run device commands with this interpreter as the target's python."""
    from edge_sdk.remote.loopback import SshdUnavailable, start_loopback_sshd

    try:
        server = start_loopback_sshd(work / "sshd", users=["root"])
    except SshdUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def write_loopback_target(server, work: Path, name: str = "loop") -> Path:
    """A deploy-target YAML for `root_loopback_sshd`'s server: profile host, this interpreter, workdir work/device."""
    path = work / f"{name}.yaml"
    path.write_text("\n".join([
        f"name: {name}", "host: 127.0.0.1", f"port: {server.port}", "user: root",
        f"identity_file: {server.client_key}", f"known_hosts: {server.known_hosts}", "profile: host",
        f"python: {sys.executable}", f"workdir: {work / 'device'}", "connect_timeout_s: 10"]) + "\n")
    return path


def send_after_channel_closes(monkeypatch, first_only: bool = False) -> list:
    """Make paramiko's Channel.sendall wait until the server has closed the channel (the losing side of the race
    where a command exits before its stdin is sent), every time or only the first time. Returns the channels sent
    on, in order."""
    import time

    import paramiko

    real_sendall, calls = paramiko.Channel.sendall, []

    def late_sendall(chan, data):
        calls.append(chan)
        if not first_only or len(calls) == 1:
            end = time.monotonic() + 10
            while not chan.closed and time.monotonic() < end:
                time.sleep(0.01)
            assert chan.closed, "the server did not close the channel within 10 s"
        return real_sendall(chan, data)

    monkeypatch.setattr(paramiko.Channel, "sendall", late_sendall)
    return calls


def minimal_plan(device: str = "host"):
    """A hand-made Plan: bundles for transfer tests need a valid manifest, not a planned model."""
    from edge_sdk.schemas.plan import Plan

    return Plan.model_validate({
        "model": "test-model", "model_name": "test-model", "device": device, "precision": "fp32",
        "runtime": {"name": "onnxruntime", "provider": "CPUExecutionProvider", "unit": "cpu", "format": "onnx"},
        "passes": [{"kind": "export_onnx"}],
        "predicted": {"latency_ms": 1.0, "throughput_per_s": 1000.0,
                      "memory_mb": {"weights_mb": 6, "activations_mb": 1, "overhead_mb": 1, "total_mb": 8},
                      "size_mb": 6.0,
                      "quality": {"expected_cosine": 1.0, "cosine_drop": 0.0, "risk": "low", "basis": "test"}}})


def make_bundle(out_dir: Path, *, device: str = "host", big_mb: float = 6, seed: int = 0,
                extra: dict[str, bytes] | None = None) -> Path:
    """A directory bundle (real writer): a random `model.onnx` of big_mb MB, a vocab, sample inputs, the runner."""
    import random

    from edge_sdk.bundle import write_bundle

    rng = random.Random(seed)
    src = Path(tempfile.mkdtemp(prefix="edge-sdk-bundle-src-"))
    try:
        contents = {"model.onnx": rng.randbytes(int(big_mb * 1e6)),
                    "tokenizer/vocab.txt": "\n".join(f"tok{i}" for i in range(2000)).encode(),
                    "samples/inputs.bin": rng.randbytes(4096), **(extra or {})}
        files = {}
        for rel, data in contents.items():
            p = src / rel.replace("/", "__")
            p.write_bytes(data)
            files[rel] = p
        write_bundle(out_dir, files, {
            "model_id": "test-model", "model_name": "test-model", "device": device, "plan": minimal_plan(device),
            "artifacts": [{"path": "model.onnx", "format": "onnx", "runtime": "onnxruntime",
                           "provider": "CPUExecutionProvider", "precision": "fp32",
                           "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}],
                           "outputs": [{"name": "last_hidden_state", "dtype": "float32",
                                        "shape": ["batch", "seq", 8]}]}],
            "preprocessing": {"tokenizer": "tokenizer/"},
            "versions": {"edge-sdk": "test"}})
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return out_dir


@pytest.fixture
def bundle_factory(tmp_path):
    """make(name, **make_bundle kwargs) → a fresh bundle directory under tmp_path."""
    def make(name: str = "bundle", **kw) -> Path:
        return make_bundle(tmp_path / name, **kw)

    return make


@pytest.fixture(scope="session", autouse=True)
def _no_stray_files_in_the_repo():
    """Tools that dump temp files into the working directory (onnxruntime's symbolic shape inference did) must be
    contained: the suite fails if the repository root gains files."""
    root = Path(__file__).resolve().parents[1]
    before = {p.name for p in root.iterdir()}
    yield
    new = sorted({p.name for p in root.iterdir()} - before - {"out", "results", ".pytest_cache"})
    if new:
        pytest.fail(f"the test run left files in the repository root: {new}")


@pytest.fixture(scope="session", autouse=True)
def _private_caches(tmp_path_factory):
    """Op graphs and calibrations of this test session live in directories of its own: a graph left in ~/.cache or a
    calibration in ./calibrations by an earlier run (or `./demo`) must never change what a test measures or plans."""
    names = {"EDGE_SDK_CACHE": "edge-sdk-cache", "EDGE_SDK_CALIBRATIONS": "edge-sdk-calibrations"}
    old = {k: os.environ.get(k) for k in names}
    for k, d in names.items():
        os.environ[k] = str(tmp_path_factory.mktemp(d))
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
