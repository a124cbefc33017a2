"""One rank of a parallel run: `python -m edge_sdk.parallel.worker RUN_DIR`, started by the launcher.

Reads RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT like a torchrun worker, joins the process group,
builds its share of the model (its stage's blocks, its tensor-parallel slice), runs warm-up and timed forwards,
measures the pipeline hand-off, gathers the output to rank 0, and writes `rank<N>.json`. On any exception it
writes `rank<N>.error.json` (type, one-line message, whether it was a communication failure) and exits 1 without
tearing the process group down (a teardown can block on a dead peer). It also exits when its launcher dies.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from . import faults
from .status import StatusBoard


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def _exit_with_parent() -> None:
    """Die with the launcher: an orphaned rank would otherwise sit in a collective until its timeout."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="edge-sdk-parent-watch").start()


def is_comm_error(exc: BaseException) -> bool:
    """A failure caused by a peer (connection closed, timeout) rather than by this rank itself."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistBackendError", None), getattr(dist, "DistNetworkError", None),
                              getattr(dist, "DistStoreError", None)) if k is not None)
    if kinds and isinstance(exc, kinds):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("connection closed", "connection reset", "timed out", "timeout", "broken pipe",
                                   "gloo", "nccl", "socket"))


def run_rank(spec, rank: int, local_rank: int, world: int, board: StatusBoard, fault) -> dict:
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from . import data, stack, tensor, weights
    from .pipeline import PipelineRunner, ping_handoff_ms
    from .tensor import allreduce_ms
    from .topology import coords, rank_of

    torch.set_grad_enabled(False)
    if spec.backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    board.comm("rendezvous (init_process_group)")
    kw = {"device_id": device} if device.type == "cuda" else {}  # binds the rank's GPU for NCCL
    dist.init_process_group(spec.backend, rank=rank, world_size=world, timeout=timedelta(seconds=spec.timeout_s),
                            **kw)
    mesh = init_device_mesh(device.type, (spec.dp, spec.pp, spec.tp), mesh_dim_names=("dp", "pp", "tp"))
    c = coords(rank, spec.tp, spec.pp)
    first, last = spec.stages[c.pp]
    is_first, is_last = c.pp == 0, c.pp == spec.pp - 1
    from ..modelspec.hf_config import load_config, model_class
    from ..modelspec.sources import resolve_source

    model_class(load_config(resolve_source(spec.model).config_path))  # import the modeling code before measuring
    rss_before = _rss_mb()

    faults.maybe_fire(fault, "build", board)
    board.set("build", f"stage {c.pp} layers {first}-{last}")
    sk = weights.load_skeleton(spec.model)
    canon = weights.canonical_names(sk.model)
    cfg = sk.model.config
    stage_mod = stack.StageModule(sk.model, first, last, is_first=is_first, is_last=is_last)
    out_width = stack.output_width(sk.model)
    styles, places = {}, None
    tp_mesh = mesh["tp"]
    if spec.tp > 1:
        styles = tensor.tp_styles(stage_mod)
        places = tensor.placements(stage_mod, styles, tp_mesh)
    params_mb = weights.materialize(sk.model, stage_mod, canon, seed=spec.seed, std=sk.std, device=device,
                                    placements=places)
    del sk  # drop the full model object: from here on the rank holds only its stage
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    timer = tensor.AllReduceTimer(sync)
    label = f"stage {c.pp} forward"
    if spec.tp > 1:
        tensor.parallelize(stage_mod, styles, tp_mesh, timer, on_comm=board.comm,
                           on_compute=lambda: board.compute(label))
    stage_mod.eval()

    compute_s = [0.0, 0.0]  # wall, CPU

    def enter() -> None:
        board.compute(label)
        if sync is not None:
            sync()

    def leave(dt: float, cpu: float) -> None:
        if sync is not None:
            sync()
        compute_s[0] += dt
        compute_s[1] += cpu
        board.comm(f"pipeline hand-off after stage {c.pp}" if spec.pp > 1 else "idle")

    stage_mod.on_enter, stage_mod.on_exit = enter, leave

    rep_batch = spec.batch // spec.dp
    ids = None
    if is_first:
        ids = data.replica_input_ids(seed=spec.seed, batch=spec.batch, seq_len=spec.seq_len,
                                     vocab_size=cfg.vocab_size, dp=spec.dp, replica=c.dp).to(device)
    runner = None
    if spec.pp > 1:
        runner = PipelineRunner(stage_mod, stage_index=c.pp, num_stages=spec.pp, device=device,
                                group=mesh["pp"].get_group(), microbatches=spec.microbatches)

    compute_ms, cpu_ms, step_ms, ar_ms = [], [], [], []
    out = None
    for it in range(spec.warmup + spec.iterations):
        if it == spec.warmup:
            faults.maybe_fire(fault, "forward", board)
        board.comm(f"barrier before iteration {it}")
        dist.barrier()  # iterations start together, so a step's time is not a late peer's start-up
        compute_s[0] = compute_s[1] = 0.0
        timer.reset()
        t0 = time.perf_counter()
        if runner is not None:
            out = runner.forward(ids)
        else:
            out = stage_mod(ids)
        if sync is not None:
            sync()
        dt = time.perf_counter() - t0
        if it >= spec.warmup:
            step_ms.append(dt * 1e3)
            compute_ms.append(compute_s[0] * 1e3)
            cpu_ms.append(compute_s[1] * 1e3)
            ar_ms.append(timer.seconds * 1e3)
        n_allreduce = timer.count

    handoff = None
    if spec.pp > 1:
        board.comm("measuring pipeline hand-off")
        act_shape = (rep_batch, spec.seq_len, cfg.hidden_size)
        prev_r = rank_of(c.dp, c.pp - 1, c.tp, tp_size=spec.tp, pp_size=spec.pp) if c.pp > 0 else None
        next_r = rank_of(c.dp, c.pp + 1, c.tp, tp_size=spec.tp, pp_size=spec.pp) if not is_last else None
        handoff = ping_handoff_ms(act_shape, torch.float32, device, prev_rank=prev_r,
                                  next_rank=next_r, stage_index=c.pp, num_stages=spec.pp,
                                  group=mesh["pp"].get_group())

    link_ms = None
    if spec.tp > 1:
        board.comm("measuring tp all-reduce")
        shape = (rep_batch // spec.microbatches, spec.seq_len, cfg.hidden_size)
        link_ms = allreduce_ms(shape, torch.float32, device, group=tp_mesh.get_group()) * n_allreduce

    board.comm("gathering outputs")
    gather_dst = rank_of(0, spec.pp - 1, 0, tp_size=spec.tp, pp_size=spec.pp)
    holds_output = is_last and c.tp == 0
    full, gather_s = None, None
    if holds_output or rank == 0:
        full, gather_s = data.gather_outputs(out if holds_output else None, rank=rank, dp=spec.dp,
                                             dp_group=mesh["dp"].get_group(), gather_dst=gather_dst,
                                             full_shape=(spec.batch, spec.seq_len, out_width),
                                             dtype=torch.float32, device=device)
    if rank == 0:
        torch.save(full.detach().cpu(), Path(os.environ["EDGE_SDK_PARALLEL_RUN_DIR"]) / "output.pt")
    board.comm("final barrier")
    dist.barrier()
    report = {
        "rank": rank, "dp": c.dp, "pp": c.pp, "tp": c.tp, "host": socket.gethostname(), "device": str(device),
        "first_layer": first, "last_layer": last, "compute_ms": compute_ms, "compute_cpu_ms": cpu_ms,
        "step_ms": step_ms,
        "tp_allreduce_ms": ar_ms if spec.tp > 1 else [], "tp_allreduces": n_allreduce if spec.tp > 1 else 0,
        "tp_allreduce_isolated_ms": link_ms,
        "handoff_ms": handoff, "gather_ms": gather_s * 1e3 if (gather_s is not None and spec.dp > 1) else None,
        "params_mb": params_mb, "rss_before_model_mb": rss_before, "peak_rss_mb": _peak_rss_mb(),
        "cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 1e6 if device.type == "cuda" else None,
    }
    dist.destroy_process_group()
    return report


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    run_dir = Path(argv[0])
    os.environ["EDGE_SDK_PARALLEL_RUN_DIR"] = str(run_dir)
    rank = int(os.environ["RANK"])
    board = StatusBoard(run_dir, rank)
    _exit_with_parent()
    fault = faults.fault_for(rank)
    code = 0
    try:
        from ..schemas.parallel import RunSpec

        spec = RunSpec.model_validate_json((run_dir / "spec.json").read_text())
        report = run_rank(spec, rank, int(os.environ.get("LOCAL_RANK", rank)), int(os.environ["WORLD_SIZE"]),
                          board, fault)
        _write_json(run_dir / f"rank{rank}.json", report)
        board.set("done")
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the launcher
        code = 1
        try:
            comm = is_comm_error(exc)
        except Exception:  # pragma: no cover
            comm = False
        _write_json(run_dir / f"rank{rank}.error.json", {
            "rank": rank, "type": type(exc).__name__, "message": " ".join(str(exc).split())[:400], "comm": comm,
            "phase": board.last,
            "time": time.time(), "traceback": traceback.format_exc()[-4000:]})
        traceback.print_exc()
        board.set("error", f"{type(exc).__name__}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
