"""Benchmarking a deployed release on an SSH target: the release's own device package (`edge_device bench`), run by
the target's python in `<workdir>/current` (or `<workdir>/releases/<id>`), its JSON lines streamed back."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

from ..errors import InputError, RemoteError
from ..remote import ConnectionLost, DeployTarget, RemoteTimeout, Session, open_bundle, resolve_target
from ..remote.command import EXIT_NO_DIR
from ..remote.device import run_device
from ..remote.session import connected
from .parse import result_from_runner
from ..schemas.bench import BenchResult, BenchSettings
from ..device.opprofile import PROFILE_DIR_PREFIX
from ..schemas.plan import Plan
from .stream import RunnerStream

_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _release_of_bundle(bundle: str | Path) -> str:
    """The release id a deploy gives this bundle (bundle.bundle_id over its file list)."""
    from ..bundle import bundle_id

    with open_bundle(bundle) as (_, manifest):
        return bundle_id(manifest.files)


def _read_remote(s, path: str) -> bytes | None:
    try:
        with s.sftp.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError):
        return None


def _remote_plan(s, bundle_dir: str) -> Plan | None:
    """The release's plan (its ModelSpec maps profiled ops to layers), read from its manifest over SFTP."""
    data = _read_remote(s, posixpath.join(bundle_dir, "manifest.json"))
    try:
        return Plan.model_validate(json.loads(data)["plan"]) if data else None
    except Exception:  # a manifest of another edge-sdk version: no per-layer mapping, the rest still counts
        return None


def _probe_args(s, t: DeployTarget, bundle_dir: str, calibration: bool) -> list[str]:
    """`--probe-suite DIR` when the host has the calibration suite of the target's profile (its reference kernel is
    uploaded once) and the release's device package knows the option (bundles built before it do not)."""
    if not calibration or not t.profile:
        return []
    code = _read_remote(s, posixpath.join(bundle_dir, "edge_device", "bench.py"))
    if not code or b"--probe-suite" not in code:
        return []
    from ..calibration.run import upload_reference
    from ..profiles import load_registry

    try:
        prof, _ = load_registry().resolve(t.profile)
    except InputError:
        return []
    root = upload_reference(s, prof)
    return ["--probe-suite", root] if root else []


def bench_remote(target: DeployTarget | str, release: str | None = None, settings: BenchSettings | None = None, *,
                 bundle: str | Path | None = None, targets_dirs: list[str] | None = None,
                 accept_new_host_key: bool = False, session: Session | None = None,
                 show_progress: bool | None = None, calibration: bool = True, calibrations_dir=None,
                 **settings_kw) -> BenchResult:
    """Run `edge_device bench` of a release on `target` (default: its current release; `bundle`: the release deployed
    from that local bundle). `settings_kw` are BenchSettings fields."""
    settings = settings or BenchSettings(**settings_kw)
    t = target if isinstance(target, DeployTarget) else resolve_target(target, targets_dirs)
    if bundle is not None:
        release = _release_of_bundle(bundle)
    if release is not None and not _RELEASE.match(release):
        raise InputError(f"--release: expected a release id like 3f2a9c0d1b2e4f56, got {release!r}")
    wd = t.remote_workdir
    bundle_dir = posixpath.join(wd, "releases", release) if release else posixpath.join(wd, "current")
    limit = settings.kill_after_s
    killed = None
    # a profiled run writes its trace into a fresh temp directory of the device (never into the immutable release)
    args = list(settings.runner_args())
    trace = plan = None
    with connected(t, session, accept_new_host_key=accept_new_host_key) as s:
        args += _probe_args(s, t, bundle_dir, calibration)
        with RunnerStream(t.name, show_progress=show_progress) as stream:
            try:
                # from inside the release: `--bundle .` is the release directory whatever the login home is
                rc, _, err = run_device(s, "bench", "--bundle", ".", *args, bundle_dir=bundle_dir,
                                        timeout=limit, on_line=lambda name, line: stream.on_line(line)
                                        if name == "stdout" else None)
            except RemoteTimeout as exc:
                rc, err, killed = None, exc.stderr, limit
            except ConnectionLost as exc:
                raise ConnectionLost(f"bench on {t.name}: {exc}; the runner on the device stops itself within a "
                                     f"second or two of losing its connection — re-run the bench once "
                                     f"{t.name} is reachable") from None
        if settings.profile_ops and stream.result is not None:
            raw = stream.result.get("op_profile") or {}
            if raw.get("trace_file"):  # fetch the runtime's trace back (SFTP), then leave the device clean
                trace = _read_remote(s, raw["trace_file"])
                folder = posixpath.dirname(raw["trace_file"])
                if posixpath.basename(folder).startswith(PROFILE_DIR_PREFIX):
                    s.run(["rm", "-rf", "--", folder], timeout=60)
        if stream.result is not None:  # the plan re-costs the prediction (calibration) and carries decoders' P
            plan = _remote_plan(s, stream.result.get("bundle_dir") or bundle_dir)
    if killed is None and stream.start is None and stream.error is None:
        if rc == 127:
            raise RemoteError(f"'{t.python}' not found on {t.name} (target field 'python')")
        if rc == EXIT_NO_DIR:
            what = f"release {release}" if release else "current release"
            raise RemoteError(f"no {what} at {bundle_dir} on {t.name}; deploy a bundle first (edge-sdk deploy)")
        if "No module named edge_device" in err:
            raise RemoteError(f"the release at {bundle_dir} on {t.name} has no edge_device package (built by an "
                              f"older edge-sdk?); rebuild the bundle and deploy it again")
    event = stream.outcome(rc, err, killed_after_s=killed)
    # `current` resolves to releases/<id>; a release's name is its bundle's content id (see remote/deploy.py)
    path = event.get("bundle_dir") or bundle_dir
    rid = posixpath.basename(path)
    result = result_from_runner(event, settings=settings, target=t.name, host=str(s.endpoint),
                                bundle_id=event.get("bundle_id") or rid, bundle_path=path, release=rid,
                                target_profile=t.profile, plan=plan, measured_on=t.profile,
                                calibration=calibration, calibrations_dir=calibrations_dir)
    result._trace = trace
    return result
