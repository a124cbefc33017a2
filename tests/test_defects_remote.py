"""Remote defects found by adversarial trials (issue 14): a known_hosts file paramiko cannot parse is one line
naming the file and the line (exit 5), not paramiko's InvalidHostKey traceback. No server is needed: the file is
read before any connection."""

from __future__ import annotations

import pytest

from edge_sdk.cli import main
from edge_sdk.errors import RemoteError


def test_garbled_known_hosts_names_file_and_line(tmp_path, capsys):
    from edge_sdk.remote.hostkeys import load_known_hosts
    from edge_sdk.remote.session import Session
    from edge_sdk.remote.targets import load_target_file

    kh = tmp_path / "known_hosts"
    kh.write_text("# pinned by hand\n"
                  "ok.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
                  "bad.example ssh-ed25519 !!!not-base64\n")
    with pytest.raises(RemoteError, match=rf"^{kh}:3: cannot read known_hosts: .*not valid base64"):
        load_known_hosts(kh)
    t = tmp_path / "t.yaml"
    t.write_text(f"name: t\nhost: 127.0.0.1\nport: 9\nprofile: host\nknown_hosts: {kh}\n")
    with pytest.raises(RemoteError, match=rf"^{kh}:3: "):
        Session(load_target_file(t)).connect()  # fails reading known_hosts, before any connection
    with pytest.raises(SystemExit) as exc:
        main(["targets", "check", str(t)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert exc.value.code == 5 and len(lines) == 1 and lines[0].startswith(f"error: {kh}:3: "), err
