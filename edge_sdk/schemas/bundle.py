"""The bundle manifest: what is in a bundle, how to check it, and what made it.

A bundle is a directory (or a single-file `.edgepkg` archive of it) holding the model file(s), preprocessing files,
sample inputs for benchmarking, the device package (`edge_device/`) and `manifest.json`. Every file except the
manifest itself is listed with its sha256 and size; `edge-sdk bundle verify` and the device re-check them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pathlib import Path, PurePosixPath

from pydantic import Field, field_validator
from .base import Strict

from .modelspec import TensorSig
from .plan import Plan

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class FileEntry(Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class Artifact(Strict):
    """One runnable model file. The first artifact is the one the plan asked for."""

    path: str
    format: Literal["onnx", "tflite"]
    runtime: str = Field(description="onnxruntime | litert")
    provider: str = Field(description="execution provider / delegate the plan asked for")
    precision: str
    inputs: list[TensorSig]
    outputs: list[TensorSig]


class QualityMetric(Strict):
    name: str = Field(description="mean_cosine | spearman | top1_agreement")
    value: float
    reference: str = Field("uncompressed model", description="what it is measured against")


class QualityReport(Strict):
    eval_data: str = Field(description="what the metrics were measured on")
    samples: int
    metrics: list[QualityMetric]
    max_quality_drop: float | None
    cosine_drop: float
    passed: bool
    kind: Literal["measured"] = "measured"


class Manifest(Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    model_id: str = Field(description="model source as given to the build")
    model_name: str
    device: str = Field(description="device profile name")
    plan: Plan
    artifacts: list[Artifact] = Field(min_length=1)
    preprocessing: dict[str, str] = Field(default_factory=dict,
                                          description="kind → path, e.g. tokenizer → tokenizer/")
    sample_inputs: str | None = Field(None, description=".npz of ready model inputs for benchmarking on the device")
    runner: str = Field("edge_device", description="the device package in the bundle (stdlib + numpy + runtime), run "
                                                   "from the bundle directory as `python3 -m edge_device ...`")
    id2label: dict[str, str] | None = Field(None, description="class index → label, for sequence classifiers")
    files: dict[str, FileEntry] = Field(description="relative POSIX path → sha256/size; every file but the manifest")
    versions: dict[str, str] = Field(description="tool → version that made the bundle")
    quality: QualityReport | None = None
    build_log: list[str] = Field(default_factory=list, description="what the build tried, in order")
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @field_validator("files")
    @classmethod
    def _safe_paths(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        """A manifest names files inside the bundle only: relative POSIX paths without '..' (a hostile manifest
        must not make a verifier or a device read or write outside the bundle)."""
        for rel in files:
            p = PurePosixPath(rel)
            if (not rel or p.is_absolute() or ".." in p.parts or "\\" in rel or rel.startswith("~")
                    or rel == MANIFEST_NAME):
                raise ValueError(f"file path {rel!r} is not a relative path inside the bundle")
        return files

    @property
    def primary(self) -> Artifact:
        return self.artifacts[0]

    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files.values())


class Attempt(Strict):
    """One plan the build tried, and what its quality gate measured."""

    plan: str
    passed: bool
    cosine: float | None = None
    detail: str


class Bundle(Strict):
    """What `build` returns: the bundle directory, its archive and manifest, and every plan it tried."""

    path: Path = Field(description="the bundle directory")
    archive: Path | None = Field(None, description="the single-file .edgepkg beside it")
    manifest: Manifest
    attempts: list[Attempt] = Field(default_factory=list)
    seconds: float = 0.0
