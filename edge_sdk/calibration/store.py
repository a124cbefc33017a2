"""Where calibrations live, which one applies to a device, and what applying one means.

Calibrations are saved as `calibrations/<target>/<UTC time>.json` (`$EDGE_SDK_CALIBRATIONS` or `--calibrations DIR`
to move them), atomically. For a device profile the newest calibration that matches is used:

- measured on this machine (`target: local`): only for the `host` profile, and only while this machine has the same
  fingerprint (CPU model, cores, ISA features) and the same runtime versions it was measured with;
- measured on a deploy target: for that target's profile, when the runtime versions match the profile's
  (a remote fingerprint cannot be checked without connecting; `bench` on the target compares it);
- fitted to published results: for that profile, when nothing measured applies.

A file that does not parse, is of another schema version, or does not match is never used silently: `find` returns
a note for each one it passed over, and the CLI prints them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from ..artifacts import atomic_write_text, read_json, validate
from ..errors import InputError
from ..schemas.calibration import CALIBRATION_SCHEMA_VERSION, Calibration, DeviceFingerprint
from ..schemas.profile import DeviceProfile, Efficiency
from .fit import GRAPH_COMPILED, gemm_table

DEFAULT_DIR = "calibrations"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def calibrations_dir(override: str | Path | None = None) -> Path:
    return Path(override or os.environ.get("EDGE_SDK_CALIBRATIONS") or DEFAULT_DIR)


def save_calibration(cal: Calibration, directory: str | Path | None = None) -> Path:
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond // 1000:03d}Z"
    name = _UNSAFE.sub("_", cal.target).lstrip(".") or "target"
    folder = calibrations_dir(directory) / name
    path, n = folder / f"{stamp}.json", 1
    while path.exists():  # two calibrations in one millisecond: keep both
        path, n = folder / f"{stamp}-{n}.json", n + 1
    return atomic_write_text(path, cal.model_dump_json(indent=1))


def load_calibration(path: str | Path) -> Calibration:
    """One calibration file; anything wrong with it is one InputError naming the file and what was expected."""
    data = read_json(path, "calibration")
    if isinstance(data, dict) and data.get("kind") == "calibration" \
            and data.get("schema_version") != CALIBRATION_SCHEMA_VERSION:
        raise InputError(f"{path}: calibration schema_version {data.get('schema_version')!r}; this edge-sdk reads "
                         f"version {CALIBRATION_SCHEMA_VERSION} (run `edge-sdk calibrate` again)")
    return validate(Calibration, data, path)


@dataclass
class Found:
    """The calibration chosen for a profile (or None) and one line per file passed over, with why."""

    calibration: Calibration | None = None
    path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str | None:
        c = self.calibration
        if c is None:
            return None
        what = ("fitted to published results" if c.source == "published"
                else f"measured on {c.target}" + (f" ({c.fingerprint.describe()})" if c.fingerprint else ""))
        return f"using calibration {self.path} ({what}, {c.created_at}; --no-calibration to ignore)"


def _runtime_mismatch(cal: Calibration, versions: dict[str, str]) -> str | None:
    for name, measured in cal.runtime_versions.items():
        have = versions.get(name)
        if have is not None and _major_minor(have) != _major_minor(measured):
            return f"measured with {name} {measured}, this device has {have}"
    return None


def _major_minor(v: str) -> str:
    return ".".join(str(v).split("+")[0].split(".")[:2])


def find_calibration(profile: DeviceProfile, *, directory: str | Path | None = None,
                     fingerprint: DeviceFingerprint | None = None,
                     runtime_versions: dict[str, str] | None = None) -> Found:
    """The newest calibration that applies to `profile`. For `host`, pass this machine's fingerprint and installed
    runtime versions; for other profiles the profile's own runtime versions are compared."""
    root = calibrations_dir(directory)
    found = Found()
    if not root.is_dir():
        return found
    versions = runtime_versions if runtime_versions is not None else \
        {r.name: r.version for r in profile.runtimes if r.version}
    measured: list[tuple[str, Path, Calibration]] = []
    published: list[tuple[str, Path, Calibration]] = []
    for path in sorted(root.glob("*/*.json")):
        try:
            cal = load_calibration(path)
        except InputError as exc:
            found.notes.append(f"ignored {exc}")
            continue
        if cal.profile != profile.name:
            continue
        if cal.source == "microbenchmarks" and cal.target == "local":
            if fingerprint is None:
                found.notes.append(f"ignored {path}: measured on this machine, but no fingerprint to compare")
                continue
            if cal.fingerprint is None or cal.fingerprint.key() != fingerprint.key():
                found.notes.append(f"ignored {path}: measured on another machine "
                                   f"({cal.fingerprint.describe() if cal.fingerprint else 'unknown'}; this one is "
                                   f"{fingerprint.describe()})")
                continue
        why = _runtime_mismatch(cal, versions)
        if why:
            found.notes.append(f"ignored {path}: {why}")
            continue
        (published if cal.source == "published" else measured).append((cal.created_at, path, cal))
    pool = measured or published
    if pool:
        _, found.path, found.calibration = max(pool, key=lambda t: (t[0], str(t[1])))
    return found


def apply_calibration(profile: DeviceProfile, cal: Calibration) -> DeviceProfile:
    """The profile with the calibration's fitted efficiencies (per runtime × precision), its measured GEMM table and
    measured bandwidth."""
    p = profile.model_copy(deep=True)
    for fit in cal.fits:
        for rt in p.runtimes:
            if (rt.name, rt.provider, rt.unit) == (fit.runtime, fit.provider, fit.unit):
                rt.efficiency[fit.precision] = Efficiency(**fit.efficiency.model_dump())
                if rt.name in GRAPH_COMPILED:  # fitted to a whole layer; isolated GEMM times would mislead
                    continue
                rt.gemm_ms[fit.precision] = gemm_table(
                    [m for m in cal.measurements if m.kind == "gemm" and m.precision == fit.precision
                     and (m.runtime, m.provider) == (fit.runtime, fit.provider)], fit.run_overhead_us)
    if cal.memory_bandwidth_gbps:
        units = {f.unit for f in cal.fits} or {u.name for u in p.compute_units}
        for u in p.compute_units:
            if u.name in units and u.memory_bandwidth_gbps is not None:
                u.memory_bandwidth_gbps = cal.memory_bandwidth_gbps
        if any(u.memory_bandwidth_gbps is None for u in p.compute_units if u.name in units):
            p.memory_bandwidth_gbps = cal.memory_bandwidth_gbps
    return p


class Calibrated(NamedTuple):
    """What `calibrated` hands back: the profile to plan with, the line naming the calibration applied (None when
    none was), and one line per calibration passed over, with why."""

    profile: DeviceProfile
    used: str | None
    ignored: list[str]


def find_for(profile: DeviceProfile, *, directory: str | Path | None = None,
             fingerprint: DeviceFingerprint | None = None, runtime_versions: dict[str, str] | None = None) -> Found:
    """find_calibration, with this machine's fingerprint and runtime versions for `host` when none are given."""
    if profile.name == "host" and fingerprint is None:
        facts = _local_facts()
        fingerprint, runtime_versions = fingerprint_from_facts(facts), _runtime_versions(facts)
    return find_calibration(profile, directory=directory, fingerprint=fingerprint, runtime_versions=runtime_versions)


def calibrated(profile: DeviceProfile, *, use: bool = True, directory: str | Path | None = None,
               fingerprint: DeviceFingerprint | None = None,
               runtime_versions: dict[str, str] | None = None) -> Calibrated:
    """`profile` with its newest matching calibration applied. `use=False` (--no-calibration) returns the profile as
    it is."""
    if not use:
        return Calibrated(profile, None, [])
    found = find_for(profile, directory=directory, fingerprint=fingerprint, runtime_versions=runtime_versions)
    if found.calibration is None:
        notes = list(found.notes)
        if profile.name == "host":   # the one profile a user can calibrate in a minute, right here
            notes.append("no calibration of this machine: host predictions use efficiencies fitted on one CPU of its "
                         "ISA class (with or without VNNI), not measured here; `edge-sdk calibrate --local` "
                         "(a few minutes; --quick about 1) measures them")
        return Calibrated(profile, None, notes)
    return Calibrated(apply_calibration(profile, found.calibration), found.describe(), list(found.notes))


def fingerprint_from_facts(facts: dict) -> DeviceFingerprint:
    """From the device package's probe facts (the same code runs here and on a target)."""
    return DeviceFingerprint(arch=str(facts.get("arch") or "unknown"), cpu_model=facts.get("cpu_model"),
                             cores=facts.get("cpu_count"), isa_features=list(facts.get("isa_features") or []),
                             accelerators=list(facts.get("accelerators") or []))


def _local_facts() -> dict:
    from ..device.probe import facts

    return facts(".")


def local_fingerprint() -> DeviceFingerprint:
    return fingerprint_from_facts(_local_facts())


def _runtime_versions(facts: dict) -> dict[str, str]:
    """Runtime name (as profiles spell it) -> installed version, from the probe's package versions."""
    pk = facts.get("packages") or {}
    names = {"onnxruntime": "onnxruntime", "ai_edge_litert": "litert", "openvino": "openvino", "tensorrt": "tensorrt"}
    return {names[k]: str(v) for k, v in pk.items() if k in names and v and not str(v).startswith("broken")}
