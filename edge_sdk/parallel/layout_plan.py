"""What does the planner predict for a layout the user forces? A Plan for `--layout pp=2`, without a multi-GPU profile.

The planner only chooses multi-device layouts for profiles with several accelerators; to try a layout on this
machine (or any profile), this costs exactly the requested (dp, tp, pp) with the planner's own cost model
(`block_costs` + `predict`), with stages balanced by predicted time (`predict` calls `balance_stages`) or taken
from the user (`--stages 0-0,1-5`, e.g. to try a deliberately unbalanced split). The Plan is a normal Plan: it can
be saved, edited and given back with `--plan`.
"""

from __future__ import annotations

import re

from ..errors import InputError
from .topology import check_layout, check_stages, default_microbatches

RUNTIME_PRECISION = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}


def parse_layout(text: str) -> tuple[int, int, int]:
    """'pp=2', 'dp=2,tp=2', 'dp=2 x pp=2', 'tp=2×pp=2' or 'single' → (dp, tp, pp)."""
    t = text.strip().lower()
    if t in ("single", "1", "none"):
        return 1, 1, 1
    vals = {"dp": 1, "tp": 1, "pp": 1}
    parts = [p for p in re.split(r"[,\s×x*]+", t) if p]
    if not parts:
        raise InputError("--layout: empty; expected e.g. pp=2, tp=2 or dp=2,pp=2")
    seen = set()
    for p in parts:
        m = re.fullmatch(r"(dp|tp|pp)=(\d+)", p)
        if not m:
            raise InputError(f"--layout: cannot read {p!r} in {text!r}; expected dp=N, tp=N and/or pp=N "
                             f"(e.g. pp=2 or dp=2,tp=2)")
        if m.group(1) in seen:
            raise InputError(f"--layout: {m.group(1)} given twice in {text!r}")
        seen.add(m.group(1))
        v = int(m.group(2))
        if v < 1:
            raise InputError(f"--layout: {m.group(1)} must be ≥ 1, got {v}")
        vals[m.group(1)] = v
    return vals["dp"], vals["tp"], vals["pp"]


def _runtime(profile, precision: str):
    token = RUNTIME_PRECISION.get(precision)
    if token is None:
        raise InputError(f"--precision: run-parallel runs PyTorch in fp32, fp16 or bf16, got {precision!r}")
    ok = [r for r in profile.runtimes if token in r.precisions]
    if not ok:
        raise InputError(f"profile {profile.name}: no runtime runs {precision}")
    return next((r for r in ok if r.name == "pytorch"), ok[0])


def layout_plan(model: str, layout: str | tuple[int, int, int], *, device: str = "host", batch: int = 1,
                seq_len: int = 128, stages: list[tuple[int, int]] | None = None, precision: str = "fp32",
                decode: bool = False, profiles_dir: list[str] | None = None):
    """A Plan that runs `model` with exactly this (dp, tp, pp), costed for `device` by the planner's cost model.

    Costed as one forward over `seq_len` tokens, which is what run-parallel measures; `decode=True` costs one
    generated token at that context instead (what the planner does for decoders)."""
    from ..modelspec import inspect_model
    from ..planner.costmodel import block_costs, predict
    from ..planner.priors import risk_label
    from ..schemas.plan import (MemoryBreakdown, ParallelLayout, Plan, Prediction, QualityEstimate,
                                  RuntimeChoice, Stage)
    from ..profiles import load_registry

    dp, tp, pp = parse_layout(layout) if isinstance(layout, str) else layout
    spec = inspect_model(model, batch=batch, seq_len=seq_len)
    info = spec.transformer
    check_layout(dp=dp, tp=tp, pp=pp, info=info, batch=batch, seq_len=seq_len,
                 microbatches=default_microbatches(batch // dp if batch % dp == 0 else 1, pp), model=model)
    prof, _ = load_registry(profiles_dir or []).resolve(device)
    rt = _runtime(prof, precision)
    unit = prof.unit(rt.unit)
    decode = decode and info.family == "decoder"
    costs = block_costs(spec, prof, unit, precision, decode=decode, runtime=rt, batch_scale=1.0 / dp)
    kv_el = 4.0 if precision == "fp32" else 2.0

    def pred_for(**kw):
        return predict(spec, prof, rt, unit, precision, costs, tp=tp, dp=dp, decode=decode,
                       kv_bytes_per_elem=kv_el, **kw)

    p = pred_for(pp=pp)
    n = info.num_layers
    if stages is not None:
        check_stages(stages, pp, n, "--stages")
        stage_ms = _stage_ms_for(stages, pred_for, n)
        how = f"stages {', '.join(f'[{a}-{b}]' for a, b in stages)} as given"
    else:
        stages, stage_ms = list(p.stages), list(p.stage_ms)
        how = "stages balanced by predicted time" if pp > 1 else ""
    stage_objs = []
    if pp > 1:
        stage_objs = [Stage(index=i, first_layer=a, last_layer=b, predicted_ms=round(ms, 4),
                            memory_mb=round(p.per_device_mb[0], 1)) for i, ((a, b), ms) in enumerate(zip(stages,
                                                                                                          stage_ms))]
    latency = p.latency_ms
    if pp > 1:  # the stages run one after another for one batch, plus the hand-offs between them
        latency = sum(stage_ms) + (p.latency_ms - sum(p.stage_ms))
    desc = "single device" if dp * tp * pp == 1 else f"{dp * tp * pp} devices"
    rationale = {
        "layout": (f"forced by --layout: dp={dp} × tp={tp} × pp={pp} ({desc}); costed for {prof.name} with "
                   f"{rt.name}/{rt.provider} {precision}" + (f"; {how}" if how else "")
                   + f"; predicted communication {p.comm_ms:.3g} ms"),
        "memory": (f"per device {p.total_mb:.1f} MB = weights {p.weights_mb:.1f}/{tp * pp} + KV {p.kv_cache_mb:.1f}"
                   f"/{tp * pp} + activations {p.activations_mb:.1f}/{tp} + runtime {p.overhead_mb:.0f}"),
        "workload": (f"batch {batch}, " + (f"one generated token at context {seq_len}" if decode
                                          else f"one forward over {seq_len} tokens")),
    }
    return Plan(
        model=str(model), model_name=spec.name, device=prof.name, batch=batch, seq_len=seq_len,
        precision=precision,  # type: ignore[arg-type]
        runtime=RuntimeChoice(name=rt.name, provider=rt.provider, unit=rt.unit, format=rt.format,
                              version=rt.version),
        passes=[],
        layout=ParallelLayout(dp=dp, tp=tp, pp=pp, stages=stage_objs, communication_ms=round(p.comm_ms, 4)),
        predicted=Prediction(
            latency_ms=round(latency, 4), throughput_per_s=round(p.throughput_per_s, 3),
            memory_mb=MemoryBreakdown(weights_mb=round(p.weights_mb, 3), activations_mb=round(p.activations_mb, 3),
                                      kv_cache_mb=round(p.kv_cache_mb, 3), overhead_mb=round(p.overhead_mb, 1),
                                      total_mb=round(p.total_mb, 3),
                                      per_device_mb=[round(x, 1) for x in p.per_device_mb]),
            size_mb=round(p.size_mb, 3),
            quality=QualityEstimate(expected_cosine=1.0, cosine_drop=0.0, risk=risk_label(0.0),  # type: ignore
                                    basis=f"{precision}, no compression: the layout does not change the maths"),
            bound=p.bound),  # type: ignore[arg-type]
        rationale=rationale, objective="latency")


def _stage_ms_for(stages: list[tuple[int, int]], pred_for, n: int) -> list[float]:
    """Predicted time of user-given stages, from the cost model's per-block and outside-block times.

    `predict` reports stage times only for the split it balances itself; it adds the embeddings' and head's time
    half to the first and half to the last stage. The per-block time is the difference between the model and the
    model with one layer dropped; the outside time is what remains."""
    full = pred_for(pp=1)
    t_n = full.stage_ms[0]
    t_less = pred_for(pp=1, drop_layers=1).stage_ms[0] if n > 1 else 0.0
    block = t_n - t_less
    outside = t_n - n * block
    out = [(b - a + 1) * block for a, b in stages]
    out[0] += outside / 2
    out[-1] += outside / 2
    return out
