"""Rolling deploys to a fleet of real OpenSSH servers on loopback (one per device, each on its own port): failure
isolation (a device killed mid-rollout, one with a changed host key, one with a full disk), content-addressed
re-deploys, canaries with health checks and rollback, and the bound on devices switching at once."""

from __future__ import annotations

import threading
import time

import pytest

from edge_sdk import api
from edge_sdk.remote import Board
from fleet_devices import change_host_key, kill_sshd, mount_tmpfs, start_devices, umount
from test_bench_inputs import make_bundle as make_model_bundle, sample_arrays

pytestmark = pytest.mark.ssh
NAMES = ["ok-a", "ok-b", "dies", "newkey", "full"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    import os

    d = tmp_path_factory.mktemp("fleet")
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def fleet(work):
    devs = start_devices(work, NAMES, work / "targets", tags={"ok-a": ["lab"], "ok-b": ["lab"]})
    full_why = mount_tmpfs(devs[-1].workdir / "releases", "256k")
    yield {d.name: d for d in devs}, full_why
    for d in devs:
        d.server.stop()
    if full_why is None:
        umount(devs[-1].workdir / "releases")


@pytest.fixture(scope="module")
def bundles(work):
    """Two real tiny-BERT bundles (the model exported once); B differs from A in its sample inputs only."""
    a = make_model_bundle(work / "model-a", cache_dir=work)
    b = make_model_bundle(work / "model-b", cache_dir=work, samples=sample_arrays(rows=3))
    return a, b


def _by_name(result):
    return {o.target: o for o in result.targets}


class KillOnUpload(Board):
    """The board a rollout reports to; the first upload progress of `victim` kills that device's sshd."""

    def __init__(self, victim):
        super().__init__()
        self.victim, self.fired = victim, False

    def progress(self, name, rel, done, total):
        super().progress(name, rel, done, total)
        if name == self.victim.name and not self.fired:
            self.fired = True
            kill_sshd(self.victim.server)


def test_one_rollout_isolates_a_killed_a_rekeyed_and_a_full_device(fleet, bundles, work):
    devs, full_why = fleet
    change_host_key(devs["newkey"])
    names = [n for n in NAMES if n != "full" or full_why is None]
    board = KillOnUpload(devs["dies"])
    res = api.deploy_fleet(bundles[0], targets=",".join(names), parallel=len(names),
                           targets_dirs=[str(work / "targets")], board=board)
    out = _by_name(res)
    assert board.fired
    assert [out[n].status for n in ("ok-a", "ok-b")] == ["ok", "ok"]
    rid = out["ok-a"].result["release_id"]
    assert devs["ok-a"].current() == devs["ok-b"].current() == rid
    dies = out["dies"]
    assert dies.status == "failed" and dies.exit_code == 5 and dies.stage == "uploading"
    assert "connection to" in dies.error and "was lost" in dies.error and "re-run the deploy" in dies.error
    assert devs["dies"].current() is None  # nothing switched on the device that died
    assert out["newkey"].status == "failed" and "HOST KEY CHANGED" in out["newkey"].error
    assert out["newkey"].stage == "connecting"
    if full_why is None:
        full = out["full"]
        assert full.status == "failed" and "not enough disk space" in full.error and full.stage == "preparing"
        assert devs["full"].current() is None
    else:
        print(f"full-disk device left out: {full_why}")
    assert not res.ok and res.exit_code == 8  # some failed
    assert {o.target for o in res.failed()} == set(names) - {"ok-a", "ok-b"}
    # the board the CLI draws ended with every device's result
    rows = {r.target: r for r in board.rows()}
    assert rows["ok-a"].status == "ok" and rows["dies"].status == "failed" and rows["ok-a"].bytes_done > 0


def test_unchanged_bundle_goes_nowhere_twice(fleet, bundles, work):
    res = api.deploy_fleet(bundles[0], targets="tag:lab", targets_dirs=[str(work / "targets")])
    out = _by_name(res)
    assert set(out) == {"ok-a", "ok-b"} and res.exit_code == 0
    assert all(o.result["bytes_sent"] == 0 and o.result["files_sent"] == 0 for o in out.values())
    assert all(o.result["switched"] is False for o in out.values())


def test_failing_canary_stops_the_rollout_and_is_rolled_back(fleet, bundles, work):
    devs, _ = fleet
    before = devs["ok-a"].current()
    res = api.deploy_fleet(bundles[1], targets="ok-a,ok-b", canary=1, latency_budget_ms=1e-6,
                           targets_dirs=[str(work / "targets")])
    a, b = res.targets
    assert (a.target, a.canary, a.status) == ("ok-a", True, "rolled_back"), (a.error, a.note)
    assert "over the latency budget" in a.error and f"rolled back to {before}" in a.note
    assert b.status == "skipped" and "canary ok-a failed" in b.error
    assert devs["ok-a"].current() == devs["ok-b"].current() == before
    assert res.stopped and "ok-a" in res.stopped and res.exit_code == 5  # every device failed alike


def test_healthy_canary_then_the_rest_with_at_most_one_switching(fleet, bundles, work, monkeypatch):
    from edge_sdk.remote import lock

    devs, _ = fleet
    active, peak, mu = [0], [0], threading.Lock()
    real_call = lock.DeployLock.call

    def counting_call(self, op, payload, **kw):
        if op != "activate":
            return real_call(self, op, payload, **kw)
        with mu:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.3)  # widen the window in which a second device could be switching too
            return real_call(self, op, payload, **kw)
        finally:
            with mu:
                active[0] -= 1

    monkeypatch.setattr(lock.DeployLock, "call", counting_call)
    res = api.deploy_fleet(bundles[1], targets="ok-*", canary=1, max_unavailable=1, parallel=2,
                           latency_budget_ms=60_000, targets_dirs=[str(work / "targets")])
    assert res.exit_code == 0, [(o.target, o.error) for o in res.targets]
    assert [o.canary for o in res.targets] == [True, False]
    rid = res.targets[0].result["release_id"]
    assert devs["ok-a"].current() == devs["ok-b"].current() == rid
    assert peak[0] == 1


def test_fleet_rollback_returns_every_device(fleet, bundles, work):
    from edge_sdk.remote import shippable

    devs, _ = fleet
    with shippable(bundles[0]) as a, shippable(bundles[1]) as b:
        assert devs["ok-a"].current() == devs["ok-b"].current() == b.release_id
        res = api.on_fleet("rollback", targets="tag:lab", targets_dirs=[str(work / "targets")])
        assert res.exit_code == 0 and res.action == "rollback"
        assert [(o.result["previous_release"], o.result["release_id"]) for o in res.targets] == \
            [(b.release_id, a.release_id)] * 2
        assert devs["ok-a"].current() == devs["ok-b"].current() == a.release_id
