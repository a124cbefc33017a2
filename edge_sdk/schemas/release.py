"""The artifacts remote operations return: Release (a deploy), Rollback, ReleaseCheck (verify), TargetCheck (preflight).

Like every box in the pipeline they are pydantic models, printed as a table for people or as JSON (`--json`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field
from .base import Strict


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Release(Strict):
    """One deploy: which bundle is now `current` on which device, and what it cost to get it there."""

    target: str
    endpoint: str = Field(description="user@host:port actually connected to")
    release_id: str = Field(description="bundle id: sha256 over the sorted manifest file list, 16 hex")
    path: str = Field(description="release directory on the device")
    current_link: str = Field(description="the `current` symlink that now points at `path`")
    previous_release: str | None = Field(description="what `current` pointed at before (rollback target)")
    switched: bool = Field(description="False when this release already was current")
    model_name: str
    device: str = Field(description="device profile the bundle was built for")
    files_total: int
    files_sent: int = Field(description="uploaded over SFTP")
    files_linked: int = Field(description="already on the device in another release (hard-linked, not sent)")
    files_present: int = Field(description="already in this release on the device with the right sha256")
    bytes_sent: int
    bytes_total: int
    verified_files: int = Field(description="files whose sha256 the device re-computed before the switch")
    pruned: list[str] = Field(default_factory=list, description="old releases deleted (keep_releases)")
    upload_seconds: float
    throughput_mb_s: float | None = Field(description="upload MB/s (10^6 bytes), None when nothing was sent")
    seconds: float = Field(description="whole deploy, connect to switch")
    host_key_accepted: str | None = Field(None, description="fingerprint pinned on this deploy (--accept-new-host-key)")
    deployed_at: str = Field(default_factory=_now)
    kind: str = "release"


class Rollback(Strict):
    target: str
    endpoint: str
    release_id: str = Field(description="what `current` points at now")
    path: str
    previous_release: str | None = Field(description="what `current` pointed at before the rollback")
    seconds: float
    rolled_back_at: str = Field(default_factory=_now)


class ReleaseCheck(Strict):
    """A release re-hashed on the device against its own manifest.json."""

    target: str
    release_id: str
    path: str
    ok: bool
    files: int
    mismatched: list[str] = Field(default_factory=list, description="sha256 differs from the manifest")
    missing: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list, description="files in the release that the manifest lacks")
    id_matches: bool = Field(description="the manifest's file list still hashes to the release id")
    error: str | None = None


class RemoteFacts(Strict):
    arch: str
    os: str
    kernel: str | None = None
    python: str | None = Field(None, description="version of the target's python; None when it is missing")
    python_executable: str | None = None
    cpu_count: int | None = Field(None, description="CPUs this process may use (affinity)")
    cpu_model: str | None = None
    isa_features: list[str] = Field(default_factory=list, description="from /proc/cpuinfo, profile vocabulary")
    mem_total_bytes: int | None = None
    mem_available_bytes: int | None = None
    disk_path: str | None = None
    disk_free_bytes: int | None = None
    packages: dict[str, str | None] = Field(default_factory=dict, description="module → version (None: absent)")


class TargetCheck(Strict):
    """Preflight: can we reach the target, and is it the device its profile says it is?"""

    target: str
    endpoint: str
    profile: str
    ok: bool = Field(description="no problems (warnings allowed)")
    facts: RemoteFacts | None
    problems: list[str] = Field(default_factory=list, description="contradictions that will break a deploy/bench")
    warnings: list[str] = Field(default_factory=list)
    bundle_memory: str | None = Field(None, description="--bundle (decoders): what it needs, and what the device "
                                                        "has free")
    host_key_accepted: str | None = None
    seconds: float
