"""Host-key pinning and authentication against real OpenSSH servers, through the CLI (exit codes, one-line errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from edge_sdk.remote.loopback import free_port, start_loopback_sshd, write_ed25519_keypair

pytestmark = pytest.mark.ssh
REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def host_fp(pub_line: str) -> str:
    kt, b64 = pub_line.split()[:2]
    return paramiko.PKey.from_type_string(kt, __import__("base64").b64decode(b64)).fingerprint


def one_line_error(r: subprocess.CompletedProcess, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


@pytest.fixture
def other_sshd(sshd, tmp_path):
    """A second server on another port with ANOTHER host key (same client key and login user)."""
    srv = start_loopback_sshd(sshd.directory / f"other-{tmp_path.name}", [sshd.user], client_key=sshd.client_key)
    yield srv
    srv.stop()


def test_unknown_host_key_is_refused_with_fingerprint(sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    t = sshd.write_target(tmp_path, "unk", known_hosts=str(kh))
    err = one_line_error(cli("targets", "releases", str(t)), 5)
    assert f"unknown host key for [127.0.0.1]:{sshd.port}" in err
    assert f"ssh-ed25519 {host_fp(sshd.server.host_key_line)}" in err and "--accept-new-host-key" in err
    assert kh.read_text() == ""  # nothing pinned without the opt-in


def test_accept_new_pins_the_key_then_strict_checking_passes(sshd, tmp_path):
    kh = tmp_path / "ssh" / "known_hosts"  # directory does not exist yet: created 0700 like OpenSSH does
    t = sshd.write_target(tmp_path, "tofu", known_hosts=str(kh))
    r = cli("targets", "releases", str(t), "--accept-new-host-key", "--json")
    assert r.returncode == 0, r.stderr
    assert "pinned new host key" in r.stderr
    assert kh.read_text() == sshd.server.known_hosts_entry() + "\n"
    assert (kh.parent.stat().st_mode & 0o777, kh.stat().st_mode & 0o777) == (0o700, 0o600)
    r = cli("targets", "releases", str(t), "--json")  # now known: works without the flag, pins nothing new
    assert r.returncode == 0, r.stderr
    assert "pinned" not in r.stderr and kh.read_text().count("\n") == 1


def test_changed_host_key_is_refused_even_with_accept_new(sshd, other_sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    pinned = sshd.server.known_hosts_entry(port=other_sshd.port)  # the FIRST server's key, for the second's port
    kh.write_text(pinned + "\n")
    t = sshd.write_target(tmp_path, "mitm", port=other_sshd.port, known_hosts=str(kh))
    for flags in ([], ["--accept-new-host-key"]):
        err = one_line_error(cli("targets", "releases", str(t), *flags), 5)
        assert f"HOST KEY CHANGED for [127.0.0.1]:{other_sshd.port}" in err
        assert host_fp(sshd.server.host_key_line) in err and host_fp(other_sshd.host_key_line) in err
        assert "ssh-keygen -R" in err
    assert kh.read_text() == pinned + "\n"


def test_hashed_known_hosts_entries_work(sshd, tmp_path):
    import shutil

    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen (openssh-client) not installed")
    kh = tmp_path / "known_hosts"
    kh.write_text(sshd.server.known_hosts_entry() + "\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert "|1|" in kh.read_text()
    r = cli("targets", "releases", str(sshd.write_target(tmp_path, "hashed", known_hosts=str(kh))), "--json")
    assert r.returncode == 0, r.stderr


def test_wrong_client_key_is_a_clear_auth_error(sshd, tmp_path):
    key = tmp_path / "stranger"
    write_ed25519_keypair(key)
    err = one_line_error(cli("targets", "releases", str(sshd.write_target(tmp_path, "wrong",
                                                                          identity_file=str(key)))), 5)
    assert f"authentication failed for {sshd.user}@127.0.0.1:{sshd.port}" in err and str(key) in err


def test_nothing_listening_is_a_clear_connect_error(sshd, tmp_path):
    port = free_port()
    err = one_line_error(cli("targets", "releases", str(sshd.write_target(tmp_path, "closed", port=port))), 5)
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in err


def test_ssh_agent_is_used_when_the_target_names_no_key(sshd, tmp_path):
    """A real ssh-agent holding the client key; the target has no identity_file."""
    import os
    import shutil
    import time

    if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
        pytest.skip("ssh-agent/ssh-add not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock), "HOME": str(tmp_path)}  # no ~/.ssh/id_* to fall back on
        subprocess.run(["ssh-add", str(sshd.client_key)], env=env, check=True, capture_output=True)
        t = sshd.write_target(tmp_path, "agent", identity_file=None)
        ok = subprocess.run([sys.executable, "-m", "edge_sdk", "targets", "releases", str(t), "--json"], env=env,
                            capture_output=True, text=True, cwd=REPO, timeout=120)
        assert ok.returncode == 0, ok.stderr
        subprocess.run(["ssh-add", "-D"], env=env, check=True, capture_output=True)  # empty agent: refused
        r = subprocess.run([sys.executable, "-m", "edge_sdk", "targets", "releases", str(t)], env=env,
                           capture_output=True, text=True, cwd=REPO, timeout=120)
        assert one_line_error(r, 5) and "authentication failed" in r.stderr and "ssh-agent" in r.stderr
    finally:
        agent.terminate()
        agent.wait(5)


def test_silent_server_hits_the_banner_timeout(sshd, tmp_path):
    """A TCP port that accepts but never speaks SSH: the connect timeout bounds the wait and says why."""
    import socket
    import time

    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        t = sshd.write_target(tmp_path, "silent", port=port, connect_timeout_s=1)
        t0 = time.monotonic()
        err = one_line_error(cli("targets", "releases", str(t)), 5)
        assert time.monotonic() - t0 < 15
    assert f"no SSH banner from 127.0.0.1:{port} within 1 s" in err


def test_connects_through_an_ssh_config_alias(sshd, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host board-alias\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
                   f"  IdentityFile {sshd.client_key}\n")
    t = sshd.write_target(tmp_path, "alias", host="board-alias", port=None, user=None, identity_file=None,
                          ssh_config=str(cfg))
    r = cli("targets", "releases", str(t), "--json")
    assert r.returncode == 0, r.stderr
    assert '"workdir": "' + str(sshd.home) in r.stdout
