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


class DecoderArtifact(Strict):
    """What makes an artifact a decoder LLM: it generates token by token with a KV cache (past/present tensors),
    laid out for onnxruntime-genai (genai_config.json, tokenizer.json beside the model)."""

    genai_config: str = Field(description="bundle path of genai_config.json (its directory is the genai model dir)")
    tokenizer: str = Field(description="bundle path of tokenizer.json")
    context_length: int = Field(ge=1, description="max tokens, prompt + generated")
    num_layers: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_size: int = Field(ge=1)
    eos_token_id: list[int] = Field(default_factory=list)
    builder: str = Field(description="what wrote the model, with its version")


class Artifact(Strict):
    """One runnable model file. The first artifact is the one the plan asked for."""

    path: str
    format: Literal["onnx", "tflite", "openvino"] = Field(description="openvino: IR, `path` is the .xml and its "
                                                                      ".bin lies beside it")
    runtime: str = Field(description="onnxruntime | litert | openvino")
    provider: str = Field(description="execution provider / delegate / OpenVINO device the plan asked for")
    precision: str
    inputs: list[TensorSig]
    outputs: list[TensorSig]
    runtime_config: dict[str, str] = Field(default_factory=dict, description="settings the device compiles the "
                                           "model with (OpenVINO: INFERENCE_PRECISION_HINT), as the build measured it")
    decoder: DecoderArtifact | None = Field(None, description="set for decoder LLMs (generation with a KV cache); "
                                                             "None for encoders and ViTs")


class QualityMetric(Strict):
    name: str = Field(description="mean_cosine | min_cosine | spearman | top1_agreement | task_accuracy | "
                                  "task_accuracy_retained | task_top1_agreement")
    value: float
    reference: str = Field("uncompressed model", description="what it is measured against")


class TaskQuality(Strict):
    """Accuracy on labelled task data (`--task-data`): the candidate against the uncompressed model."""

    task_data: str = Field(description="what it was measured on")
    method: Literal["classifier", "linear_probe"] = Field(
        description="classifier: argmax of the logits; linear_probe: a probe fitted on the uncompressed model's "
                    "train-split embeddings, scored on the test split")
    train_samples: int = Field(ge=0, description="rows that fitted the probe (0 for classifiers)")
    test_samples: int = Field(ge=1)
    reference_accuracy: float = Field(description="the uncompressed model's accuracy")
    candidate_accuracy: float = Field(description="the compressed model's accuracy (same probe as the reference)")
    candidate_refit_accuracy: float | None = Field(None, description="linear probe re-fitted on the compressed "
                                                                     "model's own train embeddings (not gated)")
    retained: float = Field(description="candidate_accuracy / reference_accuracy; gated at >= 1 - max_quality_drop")
    top1_agreement: float | None = Field(None, description="classifiers: argmax agreement with the uncompressed "
                                                           "model on the task inputs")


class QualityReport(Strict):
    eval_data: str = Field(description="what the metrics were measured on")
    samples: int
    metrics: list[QualityMetric]
    max_quality_drop: float | None
    cosine_drop: float
    passed: bool
    kind: Literal["measured"] = "measured"
    task: TaskQuality | None = Field(None, description="task accuracy on labelled data, when --task-data was given")
    failed: list[str] = Field(default_factory=list, description="the gate checks that missed the budget")


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

    def artifact_bytes(self, artifact: Artifact | None = None) -> int:
        """The model's bytes: its file, plus the files that belong to it (model.onnx.data, an IR's model.bin)."""
        a = artifact or self.primary
        stem = a.path[:-4] if a.format == "openvino" and a.path.endswith(".xml") else None
        return sum(f.size_bytes for p, f in self.files.items()
                   if p == a.path or p.startswith(a.path + ".") or (stem is not None and p == stem + ".bin"))


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
