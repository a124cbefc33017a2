"""Where benchmark results live: `results/<target>/<UTC timestamp>.json`, written atomically, read back validated.

A profiled result (`bench --profile-ops`) gets two neighbours with the same stem: `<stamp>.trace.json`, the
runtime's raw chrome-trace (open it in chrome://tracing or https://ui.perfetto.dev), and `<stamp>.tb/`, TensorBoard
scalars of measured and predicted ms per layer (`tensorboard --logdir results/`)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import atomic_write_text, load_artifact
from ..schemas.bench import BenchResult

DEFAULT_RESULTS_DIR = "results"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def result_path(results_dir: str | Path, target: str, when: datetime | None = None) -> Path:
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond // 1000:03d}Z"
    name = _UNSAFE.sub("_", target).lstrip(".") or "target"
    return Path(results_dir) / name / f"{stamp}.json"


def save_result(result: BenchResult, results_dir: str | Path = DEFAULT_RESULTS_DIR) -> Path:
    """Write `result` under results_dir/<target>/ (temp file, then rename), with its trace and TensorBoard scalars
    when it was profiled; returns the path of the JSON."""
    path = result_path(results_dir, result.target)
    stem = path.name[: -len(".json")]
    if result.op_profile is not None and result.op_profile.available:
        if result._trace is not None:
            trace = path.with_name(f"{stem}.trace.json")
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.write_bytes(result._trace)
            result.op_profile.trace_file = trace.name
        if result.op_profile.layers:
            write_tensorboard(result, path.with_name(f"{stem}.tb"))
    return atomic_write_text(path, result.model_dump_json(indent=2))


def write_tensorboard(result: BenchResult, logdir: Path) -> Path:
    """Per-layer measured and predicted ms as TensorBoard scalars: `layer_ms/measured` and `layer_ms/predicted`
    with the layer's execution index as the step (a profile along the model's depth), one `layer/<name>/...` pair
    per layer, the end-to-end p50 and the layer sum; the index → layer table as text."""
    from torch.utils.tensorboard import SummaryWriter

    op = result.op_profile
    assert op is not None
    rows = [x for x in op.layers if x.layer != "(other)"]
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for i, x in enumerate(rows):
            writer.add_scalar("layer_ms/measured", x.measured_ms, i)
            writer.add_scalar(f"layer/{x.layer}/measured_ms", x.measured_ms, 0)
            if x.predicted_ms is not None:
                writer.add_scalar("layer_ms/predicted", x.predicted_ms, i)
                writer.add_scalar(f"layer/{x.layer}/predicted_ms", x.predicted_ms, 0)
        other = next((x.measured_ms for x in op.layers if x.layer == "(other)"), 0.0)
        writer.add_scalar("total_ms/other", other, 0)
        if op.layer_sum_ms is not None:
            writer.add_scalar("total_ms/layer_sum", op.layer_sum_ms, 0)
        if op.end_to_end_ms is not None:
            writer.add_scalar("total_ms/end_to_end_p50", op.end_to_end_ms, 0)
        writer.add_text("layers", "\n".join(f"{i}: {x.layer} ({x.kind})" for i, x in enumerate(rows)), 0)
    finally:
        writer.close()
    return logdir


def load_result(path: str | Path) -> BenchResult:
    return load_artifact(BenchResult, path, "benchmark result")
