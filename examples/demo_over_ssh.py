"""Deploy a bundle to a real SSH target and benchmark it there — on this machine, through a private OpenSSH server
on 127.0.0.1 that this script starts and stops itself. Where no sshd is installed, benchmark locally instead and
say so. The encoder bundle's benchmark runs with --profile-ops, so the report gets its per-layer P/M table.

    .venv/bin/python examples/demo_over_ssh.py BUNDLE OUT_DIR [--iterations 30] [--decoder LLM_BUNDLE]

With --decoder, a decoder LLM bundle follows: `targets check --bundle` (does it fit the device's free memory?),
deploy, and a generation benchmark (time to first token, tokens/s) on the device.

The target file it writes (OUT_DIR/loopback-target.yaml) is a normal deploy target: the same commands work against
a Jetson or a Raspberry Pi with their own target file (see deploy_targets/).
"""

from __future__ import annotations

import argparse
import getpass
import subprocess
import sys
from pathlib import Path

import yaml

from edge_sdk.remote.loopback import SshdUnavailable, start_loopback_sshd

EDGE = [sys.executable, "-m", "edge_sdk"]


def run(*args: str) -> None:
    print(f"$ edge-sdk {' '.join(args)}", flush=True)
    r = subprocess.run([*EDGE, *args])
    if r.returncode != 0:
        raise SystemExit(r.returncode)


# per-operator times from the runtime's own profiler, mapped to the model's layers: the report's per-layer P/M table
PROFILE = ("--profile-ops", "--profile-iterations", "50")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--iterations", default="30")
    ap.add_argument("--decoder", help="a decoder bundle to deploy and benchmark after BUNDLE")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        server = start_loopback_sshd(out / "sshd", users=[getpass.getuser()])
    except SshdUnavailable as exc:
        print(f"no SSH server on this machine ({exc}); benchmarking locally instead (--local)")
        run("bench", "--local", "--bundle", args.bundle, "--iterations", args.iterations, *PROFILE)
        if args.decoder:
            run("bench", "--local", "--bundle", args.decoder, "--iterations", "64")
        return
    try:
        target = out / "loopback-target.yaml"
        target.write_text(yaml.safe_dump({
            "name": "loopback", "host": server.host, "port": server.port, "user": getpass.getuser(),
            "identity_file": str(server.client_key), "known_hosts": str(server.known_hosts), "profile": "host",
            # the "device" is this machine: its interpreter that has numpy + onnxruntime
            "python": sys.executable, "workdir": str(out / "device"),
        }, sort_keys=False))
        print(f"started a private OpenSSH server on {server.host}:{server.port} (host key pinned in "
              f"{server.known_hosts}); deploying over SSH")
        run("targets", "check", str(target))
        run("deploy", "--target", str(target), args.bundle)
        print("re-deploying the unchanged bundle sends nothing:")
        run("deploy", "--target", str(target), args.bundle)
        run("bench", "--target", str(target), "--iterations", args.iterations, "--inputs", "all", *PROFILE)
        if args.decoder:
            print("a decoder LLM: its weights + KV cache at its context + runtime are checked against the device's "
                  "free memory before anything is sent")
            run("targets", "check", str(target), "--bundle", args.decoder)
            run("deploy", "--target", str(target), args.decoder)
            run("bench", "--target", str(target), "--iterations", "64")
    finally:
        server.stop()
        print("stopped the private OpenSSH server")


if __name__ == "__main__":
    main()
