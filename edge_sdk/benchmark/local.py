"""Benchmarking a bundle on this machine: the bundle's own device package (`python -m edge_device bench`), in a
throw-away copy, in a subprocess.

The copy proves the bundle is self-contained (the device package finds everything it needs inside it, as it must on
a bare device); the subprocess keeps our Python (torch, a second runtime) from competing with the measured one, and
lets us kill it — and anything it started — when it overruns its deadline.
"""

from __future__ import annotations

import collections
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from ..bundle import bundle_id, extract_archive, verify_dir
from ..bundle.device_package import PACKAGE_NAME
from ..bundle.verify import BundleError
from .parse import result_from_runner
from ..schemas.bench import BenchResult, BenchSettings
from .stream import RunnerStream


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the runner's whole process group, then SIGKILL whatever is left."""
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            if sig == signal.SIGTERM:  # the leader is gone; sweep up children it left in the group
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def run_with_deadline(argv: list[str], *, cwd: str | Path, deadline_s: float,
                      on_line: Callable[[str], None]) -> tuple[int | None, str, bool]:
    """Run `argv` in its own process group, passing stdout lines to `on_line` as they come.

    Returns (exit status, stderr tail, killed). At the deadline, or on Ctrl-C, the whole group is killed.
    """
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1, start_new_session=True)
    err_tail: collections.deque[str] = collections.deque(maxlen=100)

    def pump_out() -> None:
        for line in proc.stdout:
            on_line(line)

    readers = [threading.Thread(target=pump_out, daemon=True),
               threading.Thread(target=lambda: err_tail.extend(proc.stderr), daemon=True)]
    for t in readers:
        t.start()
    killed = False
    try:
        proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        killed = True
        _kill_group(proc)
    except BaseException:
        _kill_group(proc)
        raise
    for t in readers:
        t.join(timeout=10)
    return proc.returncode, "".join(err_tail), killed


def _probe_suite(calibration: bool) -> Path | None:
    if not calibration:
        return None
    from ..calibration.scope import cached_suite
    from ..profiles import load_registry

    host, _ = load_registry().resolve("host")
    return cached_suite(host)


def bench_local(bundle: str | Path, settings: BenchSettings | None = None, *, python: str | None = None,
                show_progress: bool | None = None, calibration: bool = True, calibrations_dir=None,
                **settings_kw) -> BenchResult:
    """Benchmark a bundle directory or `.edgepkg` archive here. `settings_kw` are BenchSettings fields."""
    settings = settings or BenchSettings(**settings_kw)
    src = Path(bundle)
    if not src.exists():
        raise BundleError(f"{src}: bundle not found")
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        copy = Path(tmp) / "bundle"
        if src.is_dir():  # links are copied as links, so that verify_dir refuses them as it does in the original
            shutil.copytree(src, copy, symlinks=True)
        else:
            extract_archive(src, copy)
        # every file's sha256, the runner's too; the runner re-checks what it loads. Messages name src, not the copy.
        manifest = verify_dir(copy, shown_as=src)
        if not (copy / PACKAGE_NAME / "__main__.py").is_file():
            raise BundleError(f"{src}: the bundle has no device package ({PACKAGE_NAME}/; built by an older "
                              f"edge-sdk?); rebuild it with edge-sdk build")
        # run from the copy: `-m` finds the bundle's own edge_device there; -B keeps the copy free of __pycache__
        argv = [python or sys.executable, "-B", "-m", PACKAGE_NAME, "bench", "--bundle", str(copy),
                *settings.runner_args()]
        if settings.profile_ops:  # the trace goes beside the copy, never into the bundle
            argv += ["--profile-dir", str(Path(tmp) / "profile")]
        suite = _probe_suite(calibration)
        # the calibration's reference GEMM, to compare this machine's speed with it (bundles built before the
        # option existed carry a device package that does not know it)
        if suite is not None and "--probe-suite" in (copy / PACKAGE_NAME / "bench.py").read_text():
            argv += ["--probe-suite", str(suite)]
        deadline = settings.kill_after_s
        with RunnerStream("local", show_progress=show_progress) as stream:
            rc, err, killed = run_with_deadline(argv, cwd=copy, deadline_s=deadline, on_line=stream.on_line)
        event = stream.outcome(rc, err, killed_after_s=deadline if killed else None, local=True)
        result = result_from_runner(event, settings=settings, target="local", bundle_id=bundle_id(manifest.files),
                                    bundle_path=str(src.resolve()), host=platform.node() or None, plan=manifest.plan,
                                    measured_on="host", calibration=calibration,
                                    calibrations_dir=calibrations_dir)
        trace = result.op_profile.trace_file if result.op_profile else None
        if trace and Path(trace).is_file():
            result._trace = Path(trace).read_bytes()
    return result
