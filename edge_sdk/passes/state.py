"""What does a build carry from one pass to the next?

A Plan is a list of pass configs; the build folds them over one `BuildState`: `state = apply(config, state)`.
The state holds what later passes and the quality gate need and nothing a pass could recompute cheaply.

Passes treat the state as a value: they return a new one (`state.evolve(...)`, `state.with_artifact(...)`) instead
of appending to the lists of the one they got, so a build that tries plan A, fails its quality gate and falls
back to plan B never sees A's artifacts or log lines. Pass outputs besides the model (the pruning record, the
sparsity masks) are fields of the state, never attributes set on the nn.Module.

The torch model is the exception that cannot be cheap: a pass that changes weights (prune, distill) must work on a
copy (`copy.deepcopy(state.model)`) and put the copy in the new state, never modify `state.model` in place, and
must never touch `state.teacher`, which is the uncompressed reference that quality is measured against.

No torch import at module level: the planner and CLI import pass configs without paying for torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from torch import nn

    from .prune_surgery import PruningRecord

ModelKind = Literal["text", "vision"]
ArtifactFormat = Literal["onnx", "tflite", "openvino"]
#: Same vocabulary as `planner.schema.Precision` (the artifact's weight precision).
ArtifactPrecision = Literal["fp32", "fp16", "bf16", "int8_dynamic", "int8_static", "int4_weight_only"]


@dataclass(frozen=True)
class ArtifactRecord:
    """One model file a pass wrote. `details` holds what the pass measured or decided (max abs diff vs PyTorch,
    which nodes stayed in float, ...) so the build log and manifest can say it."""

    path: Path
    format: ArtifactFormat
    precision: ArtifactPrecision
    size_bytes: int
    produced_by: str                      # the pass kind, e.g. "export_onnx"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6

    @classmethod
    def of_file(cls, path: Path, fmt: ArtifactFormat, precision: ArtifactPrecision, produced_by: str,
                **details: Any) -> "ArtifactRecord":
        return cls(Path(path), fmt, precision, os.path.getsize(path), produced_by, dict(details))


@dataclass(frozen=True)
class BuildState:
    """The value every pass receives and returns: `apply(config, state) -> BuildState`.

    model               the torch model the next pass works on (possibly pruned/distilled), in eval mode
    teacher             the uncompressed model: the quality reference and the distillation teacher
    tokenizer           a transformers tokenizer for text models, None for vision
    work_dir            where passes write files; it exists
    model_kind          "text" (token inputs) or "vision" (pixel_values)
    artifacts           files written so far, oldest first; the last one of a format is the current one
    calibration_texts   real inputs for calibration (static int8, pruning scores), text models (a sample)
    recovery_texts      all the unlabeled text for label-free recovery (distill, gradual pruning): the user's whole
                        file or the whole shipped recovery corpus; empty → calibration_texts
    calibration_images  float32 (N, C, H, W) pixel_values, vision models
    log                 one line per decision, in order (goes into the manifest's build_log)
    progress            called with each log line as it happens (the CLI shows it); may be None
    pruning             what structured pruning kept of the ORIGINAL model (indices), None when unpruned; later
                        passes (distill's layer map) and the bundle's pruning.json read it from here
    sparsity_masks      parameter name → bool mask of the weights a sparsity pass kept; recovery re-applies them
                        after every step so the zeros survive. None when no sparsity pass ran
    """

    model: "nn.Module"
    teacher: "nn.Module | None"
    tokenizer: Any
    work_dir: Path
    model_kind: ModelKind = "text"
    artifacts: tuple[ArtifactRecord, ...] = ()
    calibration_texts: tuple[str, ...] = ()
    recovery_texts: tuple[str, ...] = ()
    calibration_images: "np.ndarray | None" = None
    log: tuple[str, ...] = ()
    progress: Callable[[str], None] | None = None
    pruning: "PruningRecord | None" = None
    sparsity_masks: "dict[str, torch.Tensor] | None" = None

    def evolve(self, **changes: Any) -> "BuildState":
        return dataclasses.replace(self, **changes)

    def note(self, line: str) -> "BuildState":
        """A new state with `line` appended to the log (and shown through `progress`)."""
        if self.progress is not None:
            self.progress(line)
        return self.evolve(log=self.log + (line,))

    def with_artifact(self, record: ArtifactRecord, line: str | None = None) -> "BuildState":
        state = self.evolve(artifacts=self.artifacts + (record,))
        return state.note(line) if line else state

    def latest(self, fmt: ArtifactFormat | None = None, precision: ArtifactPrecision | None = None
               ) -> ArtifactRecord | None:
        """The newest artifact of that format (and precision), or None."""
        for rec in reversed(self.artifacts):
            if (fmt is None or rec.format == fmt) and (precision is None or rec.precision == precision):
                return rec
        return None
