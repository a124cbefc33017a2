#!/usr/bin/env python3
"""Upload throughput: edge-sdk's tuned paramiko SFTP (Session.put) vs OpenSSH `scp`, side by side in one run.

Why this exists: paramiko's SFTP is known to be much slower than OpenSSH unless tuned (paramiko #1080, #2438).
Session.put pipelines writes, negotiates 255 KiB write requests (limits@openssh.com) and prefers AES-GCM; this
harness checks that the result keeps up with scp (target: >= 0.8x) on the same server, file and machine.

Method: a private sshd on 127.0.0.1 (edge_sdk.remote.loopback); one random file; N rounds, each timing scp and
Session.put back to back in alternating order (A B, B A, ...) so drift on a shared machine hits both sides alike.
Each timing is the whole user-visible operation: connect + authenticate + upload + close (scp cannot do less).
Printed: per-round seconds, medians, and the median with p10/p90 of the per-round ratio scp_s / edge_s
(throughput of edge-sdk relative to scp; > 1 means faster). `--with-default` adds paramiko's stock
`SSHClient().open_sftp().put()` as a third column, to show what the tuning buys.

    .venv/bin/python benchmarks/upload_throughput.py [--rounds 5] [--size-mib 64] [--with-default] [--min-ratio 0.8]
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sdk.remote import Session, DeployTarget  # noqa: E402
from edge_sdk.remote.loopback import start_loopback_sshd  # noqa: E402


def quantiles(xs: list[float]) -> tuple[float, float, float]:
    """(p10, median, p90); with few samples the inclusive method interpolates between the extremes."""
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=10, method="inclusive")
    return q[0], statistics.median(xs), q[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--with-default", action="store_true", help="also time paramiko's untuned put()")
    ap.add_argument("--min-ratio", type=float, default=None, help="exit 1 when the median ratio is below this")
    args = ap.parse_args()
    if not shutil.which("scp"):
        print("scp not found (openssh-client)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="edge-sdk-upload-bench-"))
    os.chmod(work, 0o755)
    user = getpass.getuser()
    srv = start_loopback_sshd(work / "sshd", [user])
    try:
        src = work / "payload.bin"
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        size = src.stat().st_size
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        dest_dir = Path(tempfile.mkdtemp(prefix="edge-sdk-upload-dest-", dir="/tmp"))
        target = DeployTarget(name="bench", host=srv.host, port=srv.port, user=user, identity_file=str(srv.client_key),
                        known_hosts=str(srv.known_hosts), ssh_config=str(work / "empty_ssh_config"), profile="host")
        (work / "empty_ssh_config").write_text("")

        def run_scp() -> float:
            dst = dest_dir / "scp.bin"
            t0 = time.perf_counter()
            subprocess.run(["scp", "-q", "-F", str(work / "empty_ssh_config"), "-i", str(srv.client_key),
                            "-o", f"UserKnownHostsFile={srv.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                            "-o", "BatchMode=yes", "-P", str(srv.port), str(src), f"{user}@{srv.host}:{dst}"],
                           check=True)
            dt = time.perf_counter() - t0
            dst.unlink()
            return dt

        def run_edge() -> float:
            dst = dest_dir / "edge.bin"
            t0 = time.perf_counter()
            with Session(target) as s:
                s.put(src, str(dst))
            dt = time.perf_counter() - t0
            run_edge.last_ok = hashlib.sha256(dst.read_bytes()).hexdigest() == digest  # type: ignore[attr-defined]
            dst.unlink()
            return dt

        def run_default() -> float:
            import paramiko

            dst = dest_dir / "default.bin"
            t0 = time.perf_counter()
            c = paramiko.SSHClient()
            c.load_host_keys(str(srv.known_hosts))
            c.set_missing_host_key_policy(paramiko.RejectPolicy())
            c.connect(srv.host, srv.port, user, key_filename=str(srv.client_key), allow_agent=False,
                      look_for_keys=False)
            sftp = c.open_sftp()
            sftp.put(str(src), str(dst))
            sftp.close()
            c.close()
            dt = time.perf_counter() - t0
            dst.unlink()
            return dt

        with Session(target) as s:
            s.sftp
            cipher, write_size = s.transport.local_cipher, s._write_size
        print(f"loopback sshd {srv.host}:{srv.port}, user {user}, file {size / 2**20:.0f} MiB, {args.rounds} rounds, "
              f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
        print(f"edge-sdk Session.put: cipher {cipher}, SFTP write request {write_size} bytes, pipelined")
        run_edge()  # warm both paths once (page cache, sshd's first fork) so round 1 is not an outlier
        run_scp()
        rows = []
        for i in range(args.rounds):
            if i % 2 == 0:
                a, b = run_scp(), run_edge()
            else:
                b, a = run_edge(), run_scp()
            if not run_edge.last_ok:  # type: ignore[attr-defined]
                print("ERROR: uploaded file does not match the source", file=sys.stderr)
                return 1
            d = run_default() if args.with_default else None
            rows.append((a, b, d))
            extra = f"  paramiko default {d:6.3f} s ({size / d / 1e6:6.1f} MB/s)" if d else ""
            print(f"round {i + 1}: scp {a:6.3f} s ({size / a / 1e6:6.1f} MB/s)  edge-sdk {b:6.3f} s "
                  f"({size / b / 1e6:6.1f} MB/s)  ratio {a / b:5.2f}{extra}")
        scp_s = [r[0] for r in rows]
        edge_s = [r[1] for r in rows]
        ratios = [r[0] / r[1] for r in rows]
        p10, med, p90 = quantiles(ratios)
        print(f"median scp {statistics.median(scp_s):.3f} s ({size / statistics.median(scp_s) / 1e6:.1f} MB/s), "
              f"edge-sdk {statistics.median(edge_s):.3f} s ({size / statistics.median(edge_s) / 1e6:.1f} MB/s)")
        print(f"edge-sdk / scp throughput ratio: median {med:.2f} (p10 {p10:.2f}, p90 {p90:.2f}) over "
              f"{len(ratios)} interleaved pairs")
        if args.with_default:
            dr = [r[0] / r[2] for r in rows]
            q = quantiles(dr)
            print(f"paramiko default / scp throughput ratio: median {q[1]:.2f} (p10 {q[0]:.2f}, p90 {q[2]:.2f})")
        shutil.rmtree(dest_dir, ignore_errors=True)
        if args.min_ratio is not None and med < args.min_ratio:
            print(f"FAIL: median ratio {med:.2f} < {args.min_ratio}", file=sys.stderr)
            return 1
        return 0
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
