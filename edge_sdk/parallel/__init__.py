"""parallel: execute a Plan's layout (data × tensor × pipeline parallel) with torch.distributed, and measure it.

    plan = layout_plan("examples/configs/tiny-llama.json", "pp=2", batch=4, seq_len=32)
    result = run_plan(plan)            # 2 processes on gloo; per-stage times, per-rank memory, output check

Pieces: topology (who does what), weights (each rank's share, same numbers everywhere), stack (a model cut into
stages), tensor (DTensor column/row sharding), pipeline (PipelineStage + GPipe), data (batch split, output gather),
worker (one rank), launch (processes, deadline, watchdog), failure (who failed first), compare (measured vs plan).
"""

from ..errors import ParallelRunError
from .launch import Launch
from .layout_plan import layout_plan, parse_layout
from .run import DEFAULT_TOLERANCE, run_plan
from ..schemas.parallel import ParallelRunResult, RunSpec
from .topology import parse_stages

__all__ = ["DEFAULT_TOLERANCE", "Launch", "ParallelRunError", "ParallelRunResult", "RunSpec", "layout_plan",
           "parse_layout", "parse_stages", "run_plan"]
