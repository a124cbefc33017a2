"""Run a Plan's layout on real processes and check the output against the same model in one process.

`run_plan(plan)` validates everything a user can get wrong before a process starts (world size, layout vs model,
backend vs GPUs: exit 2), writes the RunSpec, launches the ranks (launch.py), then — on the node that holds rank 0
— rebuilds the full model from the same source and seed, runs the model's own forward on the whole batch, and
reports the largest absolute difference of the outputs.
"""

from __future__ import annotations

import shutil

from ..errors import InputError
from .launch import Launch, launch
from ..schemas.parallel import OutputCheck, ParallelRunResult, RunSpec
from .topology import balanced_stages, check_layout, check_stages, default_microbatches

DEFAULT_TOLERANCE = 1e-4


def check_world(world_size: int | None, dp: int, tp: int, pp: int, where: Launch) -> int:
    world = dp * tp * pp
    if world_size is not None and world_size != world:
        raise InputError(f"--world-size {world_size} does not match the layout dp={dp} × tp={tp} × pp={pp} = "
                         f"{world} processes")
    if where.nnodes < 1 or world % where.nnodes:
        raise InputError(f"--nnodes {where.nnodes} does not divide the world size {world}")
    if not 0 <= where.node_rank < where.nnodes:
        raise InputError(f"--node-rank {where.node_rank} must be in 0..{where.nnodes - 1}")
    if where.nnodes > 1 and not where.master_port:
        raise InputError("--master-port is required with --nnodes > 1 (every node must use the same one)")
    return world


def check_backend(backend: str, procs_here: int) -> None:
    if backend not in ("gloo", "nccl"):
        raise InputError(f"--backend must be gloo or nccl, got {backend!r}")
    if backend == "nccl":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n < procs_here:
            raise InputError(f"--backend nccl needs one GPU per local rank ({procs_here}); torch sees {n} "
                             f"(use --backend gloo on CPU)")


def check_host_memory(spec_m, dp: int, world: int, procs_here: int, backend: str) -> None:
    """Refuse a run whose fp32 weights cannot fit this node's RAM (e.g. a 70B plan's layout on a laptop): the
    ranks would be killed one by one by the OOM killer instead."""
    if backend != "gloo":
        return
    try:
        with open("/proc/meminfo") as f:
            avail_kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):  # not Linux: no check
        return
    params = sum(layer.params for layer in spec_m.layers)
    need = params * 4 * dp * procs_here / world + 0.5e9 * procs_here  # replicas' shards here + ~0.5 GB per process
    if need > avail_kb * 1024:
        raise InputError(f"{spec_m.name}: {procs_here} rank(s) here would need about {need / 1e9:.1f} GB of RAM for "
                         f"fp32 weights (dp={dp}), but only {avail_kb * 1024 / 1e9:.1f} GB is available; run it "
                         f"where it fits, or try the layout on a smaller config (--model)")


def run_plan(plan, *, world_size: int | None = None, backend: str = "gloo", model: str | None = None,
             batch: int | None = None, seq_len: int | None = None, microbatches: int | None = None,
             iterations: int = 3, warmup: int = 1, seed: int = 0, timeout_s: float = 120.0,
             tolerance: float = DEFAULT_TOLERANCE, check_output: bool = True,
             where: Launch | None = None) -> ParallelRunResult:
    """Execute `plan.layout` (dp × tp × pp) with torch.distributed and measure it."""
    import time

    from ..modelspec import inspect_model
    from .compare import comparability_notes, summarize

    where = where or Launch()
    lay = plan.layout
    world = check_world(world_size, lay.dp, lay.tp, lay.pp, where)
    check_backend(backend, world // where.nnodes)
    if timeout_s <= 0:
        raise InputError(f"--timeout-s must be > 0, got {timeout_s}")
    if iterations < 1 or warmup < 0:
        raise InputError(f"--iterations must be ≥ 1 and --warmup ≥ 0, got {iterations} and {warmup}")
    source = model or plan.model
    batch = batch or plan.batch
    seq_len = seq_len or plan.seq_len
    spec_m = inspect_model(source, batch=batch, seq_len=seq_len)
    info = spec_m.transformer
    mb = microbatches or default_microbatches(batch // lay.dp if batch % lay.dp == 0 else 1, lay.pp)
    check_layout(dp=lay.dp, tp=lay.tp, pp=lay.pp, info=info, batch=batch, seq_len=seq_len, microbatches=mb,
                 model=source)
    check_host_memory(spec_m, lay.dp, world, world // where.nnodes, backend)
    if lay.stages:
        stages = [(s.first_layer, s.last_layer) for s in sorted(lay.stages, key=lambda s: s.index)]
        check_stages(stages, lay.pp, info.num_layers, "plan layout.stages")
    else:
        stages = balanced_stages(info.num_layers, lay.pp)
    spec = RunSpec(model=source, seed=seed, batch=batch, seq_len=seq_len, dp=lay.dp, tp=lay.tp, pp=lay.pp,
                   stages=stages, microbatches=mb, backend=backend, warmup=warmup, iterations=iterations,
                   timeout_s=timeout_s)
    t0 = time.time()
    outcome = launch(spec, where)
    wall = time.time() - t0
    notes = comparability_notes(plan, spec, info.family, "cuda" if backend == "nccl" else "cpu")
    output = None
    if outcome.output_path is not None and check_output:
        output = reference_check(spec, outcome.output_path, tolerance, device="cuda" if backend == "nccl" else "cpu")
    elif where.node_rank != 0:
        notes.append("rank 0 runs on node 0: the output check happens there")
    if spec_m.has_weights:
        notes.append("trained weights: every rank loaded the full checkpoint before keeping its share, so its peak "
                     "RSS includes the whole model once")
    has_head = any(layer.kind == "lm_head" for layer in spec_m.layers)
    out_name = "logits" if info.family == "decoder" and has_head else "last_hidden_state"
    result = summarize(plan, spec, outcome.reports, model_name=spec_m.name, family=info.family,
                       output_name=out_name, nnodes=where.nnodes, wall_s=wall, output=output, notes=notes)
    shutil.rmtree(outcome.run_dir, ignore_errors=True)
    return result


def reference_check(spec: RunSpec, output_path, tolerance: float, device: str = "cpu") -> OutputCheck:
    """The same model (same source, same seed) in this process, on the whole batch, with its own forward."""
    import torch

    from . import data, stack, weights

    got = torch.load(output_path, map_location="cpu")
    sk = weights.load_skeleton(spec.model)
    weights.materialize(sk.model, sk.model, weights.canonical_names(sk.model), seed=spec.seed, std=sk.std,
                        device=device)
    ids = data.all_input_ids(seed=spec.seed, batch=spec.batch, seq_len=spec.seq_len,
                             vocab_size=sk.model.config.vocab_size).to(device)
    with torch.no_grad():
        ref = stack.full_forward(sk.model.eval(), ids).float().cpu()
    if tuple(ref.shape) != tuple(got.shape):
        raise InputError(f"output shape {tuple(got.shape)} differs from the single-process {tuple(ref.shape)}")
    diff = float((ref - got).abs().max())
    return OutputCheck(shape=list(got.shape), max_abs_diff=diff, tolerance=tolerance,
                       reference=f"the model's own forward in one process ({device}, fp32, same weights and inputs)",
                       ok=diff <= tolerance)
