"""Benchmarking a deployed release on an SSH target: the release's own device package (`edge_device bench`), run by
the target's python in `<workdir>/current` (or `<workdir>/releases/<id>`), its JSON lines streamed back."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from ..errors import InputError, RemoteError
from ..remote import DeployTarget, RemoteTimeout, Session, open_bundle, resolve_target
from ..remote.command import EXIT_NO_DIR
from ..remote.device import run_device
from ..remote.session import connected
from .parse import result_from_runner
from ..schemas.bench import BenchResult, BenchSettings
from .stream import RunnerStream

_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _release_of_bundle(bundle: str | Path) -> str:
    """The release id a deploy gives this bundle (bundle.bundle_id over its file list)."""
    from ..bundle import bundle_id

    with open_bundle(bundle) as (_, manifest):
        return bundle_id(manifest.files)


def bench_remote(target: DeployTarget | str, release: str | None = None, settings: BenchSettings | None = None, *,
                 bundle: str | Path | None = None, targets_dirs: list[str] | None = None,
                 accept_new_host_key: bool = False, session: Session | None = None,
                 show_progress: bool | None = None, **settings_kw) -> BenchResult:
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
    with connected(t, session, accept_new_host_key=accept_new_host_key) as s:
        with RunnerStream(t.name, show_progress=show_progress) as stream:
            try:
                # from inside the release: `--bundle .` is the release directory whatever the login home is
                rc, _, err = run_device(s, "bench", "--bundle", ".", *settings.runner_args(), bundle_dir=bundle_dir,
                                        timeout=limit, on_line=lambda name, line: stream.on_line(line)
                                        if name == "stdout" else None)
            except RemoteTimeout as exc:
                rc, err, killed = None, exc.stderr, limit
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
    return result_from_runner(event, settings=settings, target=t.name, host=str(s.endpoint),
                              bundle_id=event.get("bundle_id") or rid, bundle_path=path, release=rid,
                              target_profile=t.profile)
