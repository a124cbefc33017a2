#!/usr/bin/env python3
"""Fleet rollout cost: deploying a bundle to 8 devices vs to 1, for an unchanged and for a changed bundle, in one run.

Goal (issue "fleets of devices"): a rollout to 8 loopback targets takes <= 3x the time of deploying to one, so a
16-device rollout of an unchanged bundle costs seconds. Every "device" is a real OpenSSH server on 127.0.0.1 with
its own port, host key and workdir (edge_sdk.remote.loopback); the target's python is this interpreter.

Method: 9 servers — one "solo" device and a fleet of N (default 8). Each round makes a NEW bundle (a fresh random
model file; the device package, vocabulary and inputs stay the same, so a changed bundle sends only what changed)
and times, in alternating order so drift on a shared machine hits both sides alike:
  changed    deploy(bundle, solo)  vs  rollout(bundle, fleet, parallel=N)   — the model is new everywhere
  unchanged  the same two again                                             — nothing to send, nothing to switch
Each timing is the whole user-visible operation, as `edge-sdk deploy` runs it: load the device profiles once, verify
the bundle here once, then per device connect, lock, prepare, upload what is missing, activate.
Printed: per-round seconds and the median with p10/p90 of the ratio fleet_s / solo_s, per kind.

NOTE: on loopback the "devices" share this machine's CPUs with sshd, paramiko and each other, so the fleet pays for
8 devices' key exchanges, python start-ups and hashing on the same cores; real devices bring their own CPUs.

    .venv/bin/python benchmarks/fleet_rollout.py [--devices 8] [--rounds 5] [--model-mb 4] [--max-ratio 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sdk.bundle import write_bundle  # noqa: E402
from edge_sdk.profiles import load_registry  # noqa: E402
from edge_sdk.remote import DeployTarget, deploy, rollout, shippable  # noqa: E402
from edge_sdk.remote.loopback import start_loopback_sshd  # noqa: E402
from edge_sdk.schemas.plan import Plan  # noqa: E402

PLAN = {"model": "bench-model", "model_name": "bench-model", "device": "host", "precision": "fp32",
        "runtime": {"name": "onnxruntime", "provider": "CPUExecutionProvider", "unit": "cpu", "format": "onnx"},
        "passes": [{"kind": "export_onnx"}],
        "predicted": {"latency_ms": 1.0, "throughput_per_s": 1000.0,
                      "memory_mb": {"weights_mb": 4, "activations_mb": 1, "overhead_mb": 1, "total_mb": 6},
                      "size_mb": 4.0, "quality": {"expected_cosine": 1.0, "cosine_drop": 0.0, "risk": "low",
                                                  "basis": "benchmark"}}}


def quantiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=10, method="inclusive")
    return q[0], statistics.median(xs), q[-1]


def make_bundle(out: Path, src: Path, model_mb: float, seed: int) -> Path:
    rng = random.Random(seed)
    src.mkdir(parents=True, exist_ok=True)
    (src / "model.onnx").write_bytes(rng.randbytes(int(model_mb * 1e6)))
    if not (src / "vocab.txt").exists():
        (src / "vocab.txt").write_text("\n".join(f"tok{i}" for i in range(30000)))
        (src / "inputs.bin").write_bytes(random.Random(0).randbytes(256 << 10))
    write_bundle(out, {"model.onnx": src / "model.onnx", "tokenizer/vocab.txt": src / "vocab.txt",
                       "samples/inputs.bin": src / "inputs.bin"},
                 {"model_id": "bench-model", "model_name": "bench-model", "device": "host",
                  "plan": Plan.model_validate(PLAN),
                  "artifacts": [{"path": "model.onnx", "format": "onnx", "runtime": "onnxruntime",
                                 "provider": "CPUExecutionProvider", "precision": "fp32",
                                 "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}],
                                 "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", "seq", 8]}]}],
                  "versions": {"edge-sdk": "bench"}})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model-mb", type=float, default=4.0, help="size of the model file that changes every round")
    ap.add_argument("--max-ratio", type=float, default=None, help="exit 1 when a median ratio is above this")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edge-sdk-fleet-bench-"))
    os.chmod(work, 0o755)
    servers = []
    try:
        def device(name: str) -> DeployTarget:
            srv = start_loopback_sshd(work / f"sshd-{name}", users=["root"] if os.geteuid() == 0 else None)
            if os.geteuid() != 0:
                import getpass

                srv.authorize(getpass.getuser())
            servers.append(srv)
            (work / "ssh_config").write_text("")
            return DeployTarget(name=name, host=srv.host, port=srv.port, user="root" if os.geteuid() == 0 else None,
                                identity_file=str(srv.client_key), known_hosts=str(srv.known_hosts),
                                ssh_config=str(work / "ssh_config"), profile="host", python=sys.executable,
                                workdir=str(work / f"device-{name}"))

        solo = device("solo")
        fleet = [device(f"dev{i}") for i in range(args.devices)]

        def one(b) -> float:
            t0 = time.perf_counter()
            deploy(b, solo, registry=load_registry())
            return time.perf_counter() - t0

        def many(b) -> float:
            t0 = time.perf_counter()
            res = rollout(b, fleet, parallel=args.devices, registry=load_registry())
            dt = time.perf_counter() - t0
            if not res.ok:
                raise SystemExit(f"rollout failed: {[(o.target, o.error) for o in res.failed()]}")
            return dt

        def timed(path: Path, i: int) -> tuple[float, float]:
            # both sides pay once for what the CLI does once: the profiles and the bundle's verification
            def solo_s() -> float:
                t0 = time.perf_counter()
                with shippable(path) as b:
                    one(b)
                return time.perf_counter() - t0

            def fleet_s() -> float:
                t0 = time.perf_counter()
                with shippable(path) as b:
                    many(b)
                return time.perf_counter() - t0

            if i % 2 == 0:
                a = solo_s()
                return a, fleet_s()
            f = fleet_s()
            return solo_s(), f

        print(f"{args.devices} loopback devices + 1 solo device, model {args.model_mb:g} MB changed every round, "
              f"{args.rounds} rounds, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
        warm = make_bundle(work / "bundle-warm", work / "src", args.model_mb, seed=1000)
        timed(warm, 0)  # every device gets the device package and the files that never change
        rows = []
        for i in range(args.rounds):
            b = make_bundle(work / f"bundle-{i}", work / "src", args.model_mb, seed=i)
            c1, c8 = timed(b, i)
            u1, u8 = timed(b, i + 1)
            rows.append((c1, c8, u1, u8))
            print(f"round {i + 1}: changed   1 device {c1:6.3f} s  {args.devices} devices {c8:6.3f} s  ratio "
                  f"{c8 / c1:5.2f}\n         unchanged 1 device {u1:6.3f} s  {args.devices} devices {u8:6.3f} s  "
                  f"ratio {u8 / u1:5.2f}")
        worst = 0.0
        for kind, k1, k8 in (("changed", 0, 1), ("unchanged", 2, 3)):
            p10, med, p90 = quantiles([r[k8] / r[k1] for r in rows])
            worst = max(worst, med)
            print(f"{kind:9s}: median 1 device {statistics.median(r[k1] for r in rows):.3f} s, {args.devices} "
                  f"devices {statistics.median(r[k8] for r in rows):.3f} s; ratio {args.devices}/1 median "
                  f"{med:.2f} (p10 {p10:.2f}, p90 {p90:.2f})")
        if args.max_ratio is not None and worst > args.max_ratio:
            print(f"FAIL: a median ratio {worst:.2f} is above {args.max_ratio:g}", file=sys.stderr)
            return 1
        return 0
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
