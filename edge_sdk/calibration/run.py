"""Running a calibration: make the kernel suite here, time it with the device package (here in a subprocess, or on
an SSH target), fit, and return the Calibration artifact.

Both paths start the same device command (`python -B -m edge_device calibrate --suite DIR`) and read the same
JSON-lines events (progress bar, deadline, Ctrl-C kill of the whole process tree — as `bench` does).
Runtimes: onnxruntime's CPU execution provider is calibrated (fp32, int8 dynamic, int8 static). Other runtimes of
the profile keep their efficiencies, and the calibration says so in its notes.
"""

from __future__ import annotations

import posixpath
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InputError, RemoteError
from ..schemas.calibration import Calibration, Microbenchmark
from ..schemas.profile import DeviceProfile, Runtime
from ..versions import tool_versions
from .fit import fit
from .store import fingerprint_from_facts

CALIBRATED = {("onnxruntime", "CPUExecutionProvider")}
DEFAULT_DEADLINE_S = 900.0
SUITE_DIR_ON_DEVICE = ".edge_calibration"


def _runtime(profile: DeviceProfile) -> Runtime:
    for rt in profile.runtimes:
        if (rt.name, rt.provider) in CALIBRATED:
            return rt
    have = ", ".join(f"{r.name}/{r.provider}" for r in profile.runtimes)
    raise InputError(f"profile {profile.name}: lists no runtime edge-sdk can calibrate yet (onnxruntime/"
                     f"CPUExecutionProvider); it has {have}")


def _precisions(rt: Runtime) -> tuple[str, ...]:
    return ("fp32",) + (("int8_dynamic", "int8_static") if "int8" in rt.precisions else ())


def suite_for(profile: DeviceProfile, rt: Runtime, progress=None) -> Path:
    from ..opgraph.make import cache_root
    from ..planner.space import RuntimeUnit, int8_reduce_range
    from .suite import make_suite

    reduce = bool(int8_reduce_range(profile, RuntimeUnit(rt, profile.unit(rt.unit))))
    where = cache_root() / "calibration-suite" / ("reduce-range" if reduce else "full-range")
    return make_suite(where, precisions=_precisions(rt), reduce_range=reduce, progress=progress)


def kernels_of(suite: Path) -> list[dict]:
    import json

    return json.loads((suite / "suite.json").read_text())["kernels"]


def _measurements(event: dict, kernels: dict[str, dict], rt: Runtime) -> list[Microbenchmark]:
    out = []
    for row in event.get("kernels") or []:
        k = kernels.get(row.get("name"))
        if k is None or not row.get("median_ms"):
            continue
        out.append(Microbenchmark(name=k["name"], kind=k["kind"], runtime=rt.name, provider=rt.provider,
                                  precision=k["precision"], shape=k["shape"], flops=k["flops"],
                                  bytes_moved=k["bytes_moved"], nodes=k["nodes"], median_ms=row["median_ms"],
                                  p10_ms=row.get("p10_ms"), p90_ms=row.get("p90_ms"),
                                  iterations=row.get("iterations") or 1, held_out=k["held_out"]))
    return out


def _calibration(event: dict, suite: Path, profile: DeviceProfile, rt: Runtime, target: str, threads: int | None,
                 started: float) -> Calibration:
    from ..schemas.modelspec import ModelSpec

    kernels = {k["name"]: k for k in kernels_of(suite)}
    measured = _measurements(event, kernels, rt)
    if not measured:
        raise RemoteError(f"calibration on {target}: the device returned no timings")
    spec_files = {k["spec_file"] for k in kernels.values() if k.get("spec_file")}
    parsed = {f: ModelSpec.model_validate_json((suite / f).read_text()) for f in spec_files}
    specs = {name: parsed[k["spec_file"]] for name, k in kernels.items() if k.get("spec_file")}
    fits, bw, notes = fit(measured, profile, rt, specs)
    if event.get("fallback_reason"):
        notes.append(f"the runtime fell back: {event['fallback_reason']}")
    others = [f"{r.name}/{r.provider}" for r in profile.runtimes if (r.name, r.provider) not in CALIBRATED]
    if others:
        notes.append(f"not calibrated (no microbenchmark suite for them yet; their efficiencies stay the "
                     f"profile's): {', '.join(others)}")
    facts = event.get("facts") or {}
    return Calibration(profile=profile.name, target=target, source="microbenchmarks",
                       fingerprint=fingerprint_from_facts(facts),
                       runtime_versions={rt.name: str(event.get("version") or "unknown")},
                       tool_versions=tool_versions(), threads=threads, memory_bandwidth_gbps=bw, fits=fits,
                       measurements=measured, seconds=round(time.perf_counter() - started, 1),
                       created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes)


def _args(suite: str, threads: int | None, deadline_s: float) -> list[str]:
    return ["calibrate", "--suite", suite, "--deadline", f"{deadline_s:g}"] + \
        (["--threads", str(threads)] if threads else [])


def calibrate_local(profile: DeviceProfile, *, threads: int | None = None, deadline_s: float = DEFAULT_DEADLINE_S,
                    show_progress: bool | None = None, progress=None) -> Calibration:
    """Time the suite on this machine (a subprocess running the device package) and fit `profile` (the host)."""
    from ..benchmark.local import run_with_deadline
    from ..benchmark.stream import RunnerStream
    from ..bundle.device_package import PACKAGE_NAME, copy_package

    started = time.perf_counter()
    rt = _runtime(profile)
    suite = suite_for(profile, rt, progress)
    with tempfile.TemporaryDirectory(prefix="edge-calibrate-") as tmp:
        copy_package(Path(tmp))
        argv = [sys.executable, "-B", "-m", PACKAGE_NAME, *_args(str(suite), threads, deadline_s)]
        with RunnerStream("local", show_progress=show_progress) as stream:
            rc, err, killed = run_with_deadline(argv, cwd=tmp, deadline_s=deadline_s + 30, on_line=stream.on_line)
        event = stream.outcome(rc, err, killed_after_s=deadline_s if killed else None)
    return _calibration(event, suite, profile, rt, "local", threads, started)


def _upload_suite(session, suite: Path) -> str:
    """The suite on the device under `<workdir>/.edge_calibration/<key>/` (uploaded once; see remote.device)."""
    import json

    from ..remote.device import upload_dir

    key = json.loads((suite / "suite.json").read_text())["key"]
    root = posixpath.join(session.target.remote_workdir, SUITE_DIR_ON_DEVICE, key)
    files = {f.name: f for f in sorted(suite.iterdir()) if f.is_file() and not f.name.startswith(".")}
    return upload_dir(session, root, files, what="calibration suite", marker="suite.json")


def calibrate_target(target, profile: DeviceProfile, *, threads: int | None = None,
                     deadline_s: float = DEFAULT_DEADLINE_S, accept_new_host_key: bool = False,
                     show_progress: bool | None = None, progress=None) -> Calibration:
    """Upload the suite to an SSH target, time it there with the host's device package, and fit."""
    from ..benchmark.stream import RunnerStream
    from ..remote import RemoteTimeout
    from ..remote.device import run_device
    from ..remote.session import connected

    started = time.perf_counter()
    rt = _runtime(profile)
    suite = suite_for(profile, rt, progress)
    with connected(target, None, accept_new_host_key=accept_new_host_key) as s:
        root = _upload_suite(s, suite)
        with RunnerStream(target.name, show_progress=show_progress) as stream:
            try:
                rc, _, err = run_device(s, *_args(root, threads, deadline_s), timeout=deadline_s + 30,
                                        on_line=lambda name, line: stream.on_line(line) if name == "stdout" else None)
                killed = None
            except RemoteTimeout as exc:
                rc, err, killed = None, exc.stderr, deadline_s
    if rc == 127:
        raise RemoteError(f"'{target.python}' not found on {target.name} (target field 'python')")
    event = stream.outcome(rc, err, killed_after_s=killed)
    return _calibration(event, suite, profile, rt, target.name, threads, started)
