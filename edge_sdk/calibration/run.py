"""Running a calibration: make the kernel suite here, time it with the device package (here in a subprocess, or on
an SSH target), fit, and return the Calibration artifact.

Both paths start the same device command (`python -B -m edge_device calibrate --suite DIR`) and read the same
JSON-lines events (progress bar, deadline, Ctrl-C kill of the whole process tree — as `bench` does).
Runtimes: onnxruntime's CPU execution provider (fp32, int8 dynamic, int8 static; int4 weight-only GEMMs, the
decoder builder's MatMulNBits) and OpenVINO's CPU device (fp32,
int8 static: the same ONNX kernels, which OpenVINO reads directly, its QDQ pairs becoming its own int8) are
calibrated, each where the profile lists it and the device has it installed (the planner does not offer
OpenVINO's int8_dynamic, its weight compression, for encoders: see planner/space.py). Other runtimes of the profile
keep their efficiencies, and the calibration says so in its notes.
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
from .fit import GRAPH_COMPILED, fit
from .store import fingerprint_from_facts
from .scope import CALIBRATED, cached_suite, suite_place
from .scope import calibrated_precisions as _precisions
from .scope import calibrated_runtimes as _runtimes

DEFAULT_DEADLINE_S = 900.0
SUITE_DIR_ON_DEVICE = ".edge_calibration"
#: `calibrate --quick`: one round of 0.02 s per kernel instead of 3 interleaved rounds of 0.1 s (the device command's
#: defaults) — the same kernels and fit in under half the time (77 s against 183 s on an idle 2-vCPU Zen 3), with no
#: second round to outvote a burst of someone else's load; for a first look or a smoke test, not for the numbers a
#: plan is judged by
QUICK_TIMING = ("--rounds", "1", "--min-time", "0.02")
QUICK_NOTE = ("quick calibration (--quick): each kernel timed in 1 round of 0.02 s, not 3 interleaved rounds of "
              "0.1 s; re-run without --quick for the planner's numbers")


def suite_for(profile: DeviceProfile, runtimes: list[Runtime], progress=None) -> Path:
    from .suite import make_suite

    where, reduce = suite_place(profile, runtimes)
    wanted = {p for r in runtimes for p in _precisions(r)}
    precisions = tuple(p for p in dict.fromkeys(p for ps in CALIBRATED.values() for p in ps) if p in wanted)
    openvino = any(r.name == "openvino" for r in runtimes)
    return make_suite(where, precisions=precisions, reduce_range=reduce, openvino=openvino, progress=progress)


def suite_for_profile(profile: DeviceProfile, progress=None) -> Path:
    """The kernel suite a calibration of `profile` times (made once, cached): what a fleet prepares up front."""
    return suite_for(profile, _runtimes(profile), progress)


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
                                  iterations=row.get("iterations") or 1, rounds=row.get("rounds") or 1,
                                  held_out=k["held_out"]))
    return out


def _fitted(event: dict, suite: Path, profile: DeviceProfile, rt: Runtime, target: str,
            bandwidth_gbps: float | None = None):
    """(measurements, fits, bandwidth, notes) of one runtime's timings; `bandwidth_gbps`: the device's, as an
    earlier runtime measured it (fit.fit)."""
    from ..schemas.modelspec import ModelSpec

    kernels = {k["name"]: k for k in kernels_of(suite)}
    measured = _measurements(event, kernels, rt)
    if not measured:
        raise RemoteError(f"calibration on {target}: the device returned no timings for {rt.name}/{rt.provider}")
    spec_files = {k["spec_file"] for k in kernels.values() if k.get("spec_file")}
    parsed = {f: ModelSpec.model_validate_json((suite / f).read_text()) for f in spec_files}
    specs = {name: parsed[k["spec_file"]] for name, k in kernels.items() if k.get("spec_file")}
    fits, bw, notes = fit(measured, profile, rt, specs, bandwidth_gbps)
    if event.get("fallback_reason"):
        notes.append(f"{rt.name}: the runtime fell back: {event['fallback_reason']}")
    return measured, fits, bw, notes


def _calibration(events: list[tuple[Runtime, dict]], suite: Path, profile: DeviceProfile, target: str,
                 threads: int | None, started: float, skipped: list[str], quick: bool = False) -> Calibration:
    measured, fits, notes, versions, bw, facts = [], [], list(skipped) + ([QUICK_NOTE] if quick else []), {}, None, {}
    for rt, event in events:
        m, f, b, n = _fitted(event, suite, profile, rt, target, bw)
        measured += m
        fits += f
        notes += n
        bw = bw if bw is not None else b
        versions[rt.name] = str(event.get("version") or "unknown")
        facts = facts or (event.get("facts") or {})
    done = {(rt.name, rt.provider) for rt, _ in events}
    others = [f"{r.name}/{r.provider}" for r in profile.runtimes if (r.name, r.provider) not in done
              and (r.name, r.provider) not in CALIBRATED]
    if others:
        notes.append(f"not calibrated (no microbenchmark suite for them yet; their efficiencies stay the "
                     f"profile's): {', '.join(others)}")
    return Calibration(profile=profile.name, target=target, source="microbenchmarks",
                       fingerprint=fingerprint_from_facts(facts), runtime_versions=versions,
                       tool_versions=tool_versions(), threads=threads, memory_bandwidth_gbps=bw, fits=fits,
                       measurements=measured, seconds=round(time.perf_counter() - started, 1),
                       created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes)


def _each_runtime(runtimes: list[Runtime], run_one) -> tuple[list[tuple[Runtime, dict]], list[str]]:
    """Time the suite in every runtime; the first must work, a later one that is missing on the device (or fails)
    is skipped with a note, so an onnxruntime-only device still calibrates."""
    events, skipped = [], []
    for i, rt in enumerate(runtimes):
        try:
            events.append((rt, run_one(rt)))
        except RemoteError as exc:
            if i == 0:
                raise
            skipped.append(f"{rt.name}/{rt.provider} not calibrated: {' '.join(str(exc).split())[:300]}")
    return events, skipped


#: kernel kinds a graph-compiling runtime times: no isolated GEMMs, which its fit does not use (fit.fit: it is
#: fitted to whole layer stacks; the 144 GEMMs took 26 s of OpenVINO's 51 on 2 Zen 5 vCPUs)
GRAPH_KINDS = ("attention", "softmax", "layernorm", "gelu", "bandwidth", "overhead", "dispatch", "layer")


def _args(suite: str, rt: Runtime, threads: int | None, deadline_s: float, quick: bool = False) -> list[str]:
    return ["calibrate", "--suite", suite, "--deadline", f"{deadline_s:g}", "--runtime", rt.name,
            "--provider", rt.provider, "--precisions", ",".join(_precisions(rt))] + \
        (["--only", ",".join(GRAPH_KINDS)] if rt.name in GRAPH_COMPILED else []) + \
        (["--threads", str(threads)] if threads else []) + (list(QUICK_TIMING) if quick else [])


def calibrate_local(profile: DeviceProfile, *, threads: int | None = None, deadline_s: float = DEFAULT_DEADLINE_S,
                    show_progress: bool | None = None, progress=None, quick: bool = False) -> Calibration:
    """Time the suite on this machine (a subprocess running the device package) and fit `profile` (the host);
    `quick`: one short round per kernel (QUICK_TIMING)."""
    from ..benchmark.local import run_with_deadline
    from ..benchmark.stream import RunnerStream
    from ..bundle.device_package import PACKAGE_NAME, copy_package

    started = time.perf_counter()
    runtimes = _runtimes(profile)
    suite = suite_for(profile, runtimes, progress)
    with tempfile.TemporaryDirectory(prefix="edge-calibrate-") as tmp:
        copy_package(Path(tmp))

        def run_one(rt: Runtime) -> dict:
            argv = [sys.executable, "-B", "-m", PACKAGE_NAME, *_args(str(suite), rt, threads, deadline_s, quick)]
            with RunnerStream(f"local {rt.name}", show_progress=show_progress) as stream:
                rc, err, killed = run_with_deadline(argv, cwd=tmp, deadline_s=deadline_s + 30,
                                                    on_line=stream.on_line)
            return stream.outcome(rc, err, killed_after_s=deadline_s if killed else None)

        events, skipped = _each_runtime(runtimes, run_one)
    return _calibration(events, suite, profile, "local", threads, started, skipped, quick)


def upload_reference(session, profile: DeviceProfile) -> str | None:
    """The cached suite's reference kernel alone, on the device under `<workdir>/.edge_calibration/<key>-reference/`
    (uploaded once), for `bench --probe-suite`; None when `calibrate` left no suite for `profile` here."""
    import json

    from ..remote.device import upload_dir

    suite = cached_suite(profile)
    if suite is None:
        return None
    meta = json.loads((suite / "suite.json").read_text())
    ref = next((k for k in meta["kernels"] if k.get("name") == meta.get("reference")), None)
    if ref is None or not (suite / ref["file"]).is_file():
        return None
    root = posixpath.join(session.target.remote_workdir, SUITE_DIR_ON_DEVICE, f"{meta['key']}-reference")
    index = json.dumps({"key": meta["key"], "reference": ref["name"], "kernels": [ref]}).encode()
    return upload_dir(session, root, {"suite.json": index, ref["file"]: suite / ref["file"]},
                      what="calibration reference kernel", marker="suite.json")


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
                     show_progress: bool | None = None, progress=None, quick: bool = False) -> Calibration:
    """Upload the suite to an SSH target, time it there with the host's device package, and fit (`quick`: as in
    calibrate_local)."""
    from ..benchmark.stream import RunnerStream
    from ..remote import RemoteTimeout
    from ..remote.device import run_device
    from ..remote.session import connected

    started = time.perf_counter()
    runtimes = _runtimes(profile)
    suite = suite_for(profile, runtimes, progress)
    with connected(target, None, accept_new_host_key=accept_new_host_key) as s:
        root = _upload_suite(s, suite)

        def run_one(rt: Runtime) -> dict:
            with RunnerStream(f"{target.name} {rt.name}", show_progress=show_progress) as stream:
                try:
                    rc, _, err = run_device(s, *_args(root, rt, threads, deadline_s, quick), timeout=deadline_s + 30,
                                            on_line=lambda name, line: stream.on_line(line) if name == "stdout"
                                            else None)
                    killed = None
                except RemoteTimeout as exc:
                    rc, err, killed = None, exc.stderr, deadline_s
            if rc == 127:
                raise RemoteError(f"'{target.python}' not found on {target.name} (target field 'python')")
            return stream.outcome(rc, err, killed_after_s=killed)

        events, skipped = _each_runtime(runtimes, run_one)
    return _calibration(events, suite, profile, target.name, threads, started, skipped, quick)
