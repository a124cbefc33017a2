"""SSH to devices (paramiko): targets, sessions, deploys with atomic releases, rollback, preflight checks.

Stable API (other stages — `edge-sdk bench` over SSH — build on it):

    from edge_sdk.remote import Session, resolve_target, deploy

    target = resolve_target("jetson-lab")          # a name in deploy_targets/ or $EDGE_SDK_TARGETS, or a YAML path
    with Session(target) as s:                      # host key pinned via known_hosts; key or ssh-agent auth
        rc, out, err = s.run(["python3", "-c", "print(1)"],   # argv only: every word is shlex-quoted
                             timeout=30,                       # default: target.command_timeout_s
                             on_line=lambda stream, line: print(stream, line),  # streamed while it runs
                             cwd="/path/on/device", env={"OMP_NUM_THREADS": "2"}, stdin=b"...")
        s.put("local.bin", "/remote/path/local.bin")           # tuned SFTP (pipelined, large requests)
        s.sha256(["/remote/path/local.bin"])                   # {path: hex | None}, one remote command
        run_device(s, "probe", "edge-sdk")                     # python3 -m edge_device probe edge-sdk (device.py)

    release = deploy("out/minilm-jetson", target)   # -> Release (pydantic); `<workdir>/current` is the bundle now

    fleet, targets = resolve_group("jetson-*,tag:lab", None)     # or (None, "lab"): a fleet file (fleet.py)
    with shippable("out/minilm-jetson") as b:                   # verified once, shipped to every device
        result = rollout(b, targets, parallel=8, canary=1)      # -> FleetResult; see rollout.py

Session.run contract:
- returns RunResult(rc, stdout, stderr) (a NamedTuple: unpacks as a 3-tuple); rc is -1 when killed by a signal;
- at the deadline raises RemoteTimeout (a RemoteError, exit code 5) after killing the command's whole process tree
  on the device (session, group and descendants: SIGTERM, then SIGKILL after kill_grace_s); the partial output is on
  the exception (.stdout, .stderr);
- on KeyboardInterrupt, or when on_line raises, the same kill happens and the exception propagates;
- a lost connection raises RemoteError; check=True turns a non-zero rc into RemoteError.
- The device's login shell must be POSIX (sh, bash, dash, ash); output a login script prints is not filtered.

Every device-side command (bench, release operations, kill, probe) starts through device.run_device:
`python3 -m edge_device COMMAND ...`, from a release (its own package) or from the host's package uploaded once to
<workdir>/.edge_device/<hash>/.

Device layout (target.workdir): releases/<release id>/, current -> releases/<id>, releases.json, .edge_device/,
.edge-sdk.deploy.lock (held by the device process of the one deploy in progress: lock.py).
"""

from .deploy import ShippableBundle, deploy, open_bundle, shippable
from .fleet import Board, resolve_group, run_each
from .lock import DeployBusy, DeployLock
from .device import call_json, run_device
from .endpoint import Endpoint, resolve_endpoint
from .preflight import check_target
from .releases import release_status, rollback, verify_release
from ..schemas.release import Release, ReleaseCheck, RemoteFacts, Rollback, TargetCheck
from .rollout import rollout
from .session import ConnectionLost, LineCallback, RemoteTimeout, RunResult, Session, connected, remote_command
from .targets import DeployTarget, load_target_file, load_targets, resolve_target, targets_dirs

__all__ = ["Board", "ConnectionLost", "DeployBusy", "DeployLock", "Endpoint", "LineCallback", "Release", "ReleaseCheck",
           "RemoteFacts", "RemoteTimeout", "Rollback", "RunResult", "Session", "ShippableBundle", "DeployTarget",
           "TargetCheck", "call_json", "check_target", "connected", "deploy", "load_target_file", "load_targets",
           "open_bundle", "release_status", "remote_command", "resolve_endpoint", "resolve_group", "resolve_target",
           "rollback", "rollout", "run_device", "run_each", "shippable", "targets_dirs", "verify_release"]
