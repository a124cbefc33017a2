"""The Python API: one function per arrow of the pipeline, each taking and returning typed artifacts.

    spec   = edge_sdk.inspect("minilm")                              # ModelSpec
    plans  = edge_sdk.plan("minilm", device="jetson")                # PlanSet (plans.best is a Plan)
    bundle = edge_sdk.build(plans.best, out_dir="out/minilm")        # Bundle (runs the plan; never re-plans)
    rel    = edge_sdk.deploy(bundle, target="my-jetson")             # Release
    fleet  = edge_sdk.deploy_fleet(bundle, fleet="lab", canary=1)    # FleetResult (one outcome per device)
    result = edge_sdk.bench(target="my-jetson")                      # BenchResult (or bench(bundle): measured here)
    graph  = edge_sdk.graph("minilm")                                # OpGraph (cached; the report reads it)
    rep    = edge_sdk.report("minilm", devices="all", graph=graph)   # CompatReport

The CLI is a thin shell over these functions: `edge-sdk plan --device jetson` prints what `plan(...)` returns.
Heavy imports (torch, onnxruntime, paramiko) happen inside the functions, so `import edge_sdk` stays cheap.
Bad input raises `edge_sdk.errors.InputError` (and its siblings, one per exit code; see errors.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .errors import InfeasibleError
    from .schemas.bench import BenchResult, BenchSettings
    from .schemas.bundle import Bundle
    from .schemas.calibration import Calibration
    from .schemas.fleet import FleetResult
    from .schemas.graph import OpGraph
    from .schemas.modelspec import ModelSpec
    from .schemas.plan import Plan, PlanSet
    from .schemas.profile import DeviceProfile
    from .schemas.release import Release
    from .schemas.report import CompatReport

Progress = Callable[[str], None]
DEFAULT_MAX_QUALITY_DROP = 0.02  # planner's default, restated so `import edge_sdk` loads no pydantic (tested)


def inspect(model: Any = "minilm", *, batch: int = 1, seq_len: int | None = None,
            image_size: int | None = None) -> "ModelSpec":
    """`edge-sdk inspect`: what a model is made of (per-layer params, FLOPs, bytes), never needing its weights."""
    from .modelspec import inspect_model

    return inspect_model(model, batch=batch, seq_len=seq_len, image_size=image_size)


def _constraints(latency_ms, max_size_mb, max_quality_drop, runtime, recovery_minutes=None):
    from .planner import Constraints

    cons = Constraints(latency_ms=latency_ms, max_size_mb=max_size_mb, max_quality_drop=max_quality_drop,
                       runtime=runtime)
    if recovery_minutes is not None:
        cons.recovery_minutes = recovery_minutes
    cons.validate()
    return cons


def plan(model: Any = "minilm", device: str = "host", *, batch: int = 1, seq_len: int = 128,
         objective: str = "latency", latency_ms: float | None = None, max_size_mb: float | None = None,
         max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP, runtime: str | None = None, top: int = 3,
         profiles_dir: Sequence[str] | None = None, spec: "ModelSpec | None" = None, calibration: bool = True,
         calibrations_dir: str | Path | None = None, recovery_minutes: float | None = None) -> "PlanSet":
    """`edge-sdk plan --device D`: the ranked, explained plans for one device, predicted with the newest matching
    calibration (`calibration=False`: the profile's own efficiencies). `recovery_minutes`: the distillation a
    pruned plan gets (its predicted quality depends on it, and its distill pass carries it). Raises InfeasibleError
    (exit 3)."""
    from .calibration import calibrated
    from .planner import plan_for_profile
    from .profiles import load_registry

    cons = _constraints(latency_ms, max_size_mb, max_quality_drop, runtime, recovery_minutes)
    prof, how = load_registry(list(profiles_dir or [])).resolve(device)
    prof, used, notes = calibrated(prof, use=calibration, directory=calibrations_dir)
    spec = spec or inspect(model, batch=batch, seq_len=seq_len)
    ps = plan_for_profile(spec, prof, model=str(model), objective=objective, constraints=cons, top=top,
                          device_note=how)
    return ps.model_copy(update={"calibration": used, "notes": notes})


def plan_devices(model: Any = "minilm", devices: str = "all", *, batch: int = 1, seq_len: int = 128,
                 objective: str = "latency", latency_ms: float | None = None, max_size_mb: float | None = None,
                 max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP, runtime: str | None = None, top: int = 3,
                 profiles_dir: Sequence[str] | None = None, spec: "ModelSpec | None" = None,
                 calibration: bool = True, calibrations_dir: str | Path | None = None,
                 recovery_minutes: float | None = None) -> "list[tuple[DeviceProfile, PlanSet | InfeasibleError]]":
    """`edge-sdk plan --devices all`: every selected profile with its PlanSet, or the InfeasibleError saying why not."""
    from .calibration import calibrated
    from .errors import InfeasibleError, InputError
    from .planner import plan_for_profile
    from .profiles import load_registry

    cons = _constraints(latency_ms, max_size_mb, max_quality_drop, runtime, recovery_minutes)
    profiles = load_registry(list(profiles_dir or [])).select(devices)
    if not profiles:
        raise InputError(f"--devices {devices}: selects no device profile (expected all, a class such as mobile, "
                         f"or names)")
    spec = spec or inspect(model, batch=batch, seq_len=seq_len)
    out: list = []
    for prof in profiles:
        cprof, used, notes = calibrated(prof, use=calibration, directory=calibrations_dir)
        try:
            ps = plan_for_profile(spec, cprof, model=str(model), objective=objective, constraints=cons, top=top)
            out.append((prof, ps.model_copy(update={"calibration": used, "notes": notes})))
        except InfeasibleError as exc:
            out.append((prof, exc))
    return out


_plan = plan  # build() takes a `plan=` argument; this keeps the function reachable inside it


def build(model: "Any | Plan | PlanSet | None" = None, *, device: str = "host", out_dir: str | Path = "out/bundle",
          plan: "Plan | PlanSet | Sequence[Plan] | None" = None, runtime: str | None = None, top: int = 3,
          max_quality_drop: float | None = None, eval_data: str | Sequence[str] | None = None,
          eval_samples: int | None = None, task_data: str | None = None,
          calibration_data: str | None = None, calibration_samples: int = 2000, distill_steps: int | None = None,
          distill_seconds: float | None = None, archive: bool = True, profiles_dir: Sequence[str] | None = None,
          progress: Progress | None = None, recovery_minutes: float | None = None) -> "Bundle":
    """`edge-sdk build`: compress, export, measure quality, write a verifiable bundle.

    Give a Plan or PlanSet (as `model` or `plan`) and it is run as it is; give a model and a device and the
    planner's top plans (under `max_quality_drop` and `runtime`) are tried in order until one passes the gate.
    `task_data` (labelled: .npz inputs+labels, or .tsv/.jsonl text) adds task accuracy to the gate: retained accuracy
    (and a classifier's top-1 agreement) must be >= 1 - max_quality_drop, like the mean cosine.
    `recovery_minutes`: plans are made (and their pruning judged) for that much distillation; a given plan's
    distill pass gets it as its time budget (`distill_seconds` / `distill_steps`, when given, win)."""
    from pydantic import ValidationError

    from .builder import BuildOptions, build as run_plans
    from .errors import InputError
    from .schemas.plan import Plan, PlanSet

    if isinstance(model, (Plan, PlanSet)):
        if plan is not None:
            raise InputError("build: give the plan once (as the first argument or as plan=), not both")
        plan, model = model, None
    if recovery_minutes is not None and plan is not None and distill_seconds is None and distill_steps is None:
        from .planner import Constraints
        from .planner.search import RECOVERY_MAX_STEPS

        Constraints(recovery_minutes=recovery_minutes).validate()
        distill_seconds = recovery_minutes * 60 if recovery_minutes > 0 else None
        distill_steps = RECOVERY_MAX_STEPS if recovery_minutes > 0 else 0
    if eval_data is not None:  # one file/directory, or a list of image files
        eval_data = str(eval_data) if isinstance(eval_data, (str, Path)) else [str(x) for x in eval_data]
    given = dict(max_quality_drop=max_quality_drop, eval_data=eval_data, eval_samples=eval_samples,
                 task_data=None if task_data is None else str(task_data),
                 calibration_data=calibration_data, calibration_samples=calibration_samples,
                 distill_steps=distill_steps, distill_seconds=distill_seconds, archive=archive)
    try:
        opts = BuildOptions(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-")
        raise InputError(f"{flag}: {err['msg']} (got {err.get('input')!r})") from None
    if plan is None:
        source = model if model is not None else "minilm"
        spec = inspect(source, seq_len=128)
        if runtime is None and spec.transformer is not None and spec.transformer.family == "decoder":
            runtime = "onnxruntime"  # decoder LLMs are built with onnxruntime-genai (ONNX with a KV cache)
        plans = _plan(source, device, top=top, runtime=runtime, max_quality_drop=opts.max_quality_drop,
                      profiles_dir=profiles_dir, spec=spec, recovery_minutes=recovery_minutes)
        if progress:
            for line in [plans.device_note, plans.calibration, *plans.notes]:
                if line:
                    progress(line)
        plan = plans
    elif model is not None:
        _check_model_matches(plan, model)
    return run_plans(plan, out_dir, options=opts, progress=progress)


def _check_model_matches(plan, model) -> None:
    """`--model X --plan P`: P must have been made for X (a plan for another model would build the wrong thing)."""
    from .errors import InputError
    from .schemas.plan import PlanSet

    first = plan.plans[0] if isinstance(plan, PlanSet) else (plan if not isinstance(plan, (list, tuple)) else plan[0])
    if str(model) != first.model:
        name = inspect(model).name
        if name != first.model_name:
            raise InputError(f"plan: made for model '{first.model_name}', but --model is '{name}'")


def graph(model: Any = "minilm", *, seq_len: int = 128, tflite: str = "auto", cache_dir: str | Path | None = None,
          refresh: bool = False, progress: Progress | None = None) -> "OpGraph":
    """`edge-sdk graph`: the model's op graph, made once (ONNX export, LiteRT conversion) and cached."""
    from .opgraph import make_graph

    return make_graph(str(model), seq_len=seq_len, tflite=tflite, cache_dir=cache_dir, refresh=refresh,
                      progress=progress)[0]


def calibrate(*, local: bool = False, target: str | None = None, from_published: str | None = None,
              threads: int | None = None, deadline_s: float = 900.0, targets_dirs: Sequence[str] | None = None,
              accept_new_host_key: bool = False, profiles_dir: Sequence[str] | None = None,
              progress: Progress | None = None, quick: bool = False) -> "Calibration":
    """`edge-sdk calibrate`: microbenchmarks through each runtime on this machine (`local=True`) or a deploy target,
    fitted to the cost model; or a profile fitted to the published results it carries. Returns the Calibration
    (not saved: `edge_sdk.calibration.save_calibration(cal)` writes it where plan/report/bench find it). `quick`:
    one short timing round per kernel (under half the time, noisier; calibration.run.QUICK_TIMING)."""
    from .errors import InputError
    from .profiles import load_registry

    if sum(bool(x) for x in (local, target, from_published)) != 1:
        raise InputError("calibrate: give exactly one of local=True, target= or from_published=")
    reg = load_registry(list(profiles_dir or []))
    if from_published:
        from .calibration.published import calibrate_from_published

        prof, _ = reg.resolve(from_published)
        say = (lambda done, total, what: progress(f"[{done}/{total}] {what}")) if progress else None
        return calibrate_from_published(prof, progress=say, siblings=reg.profiles)   # the user's profiles too
    from .calibration.run import calibrate_local, calibrate_target

    if local:
        prof, _ = reg.resolve("host")
        return calibrate_local(prof, threads=threads, deadline_s=deadline_s, quick=quick)
    from .remote import resolve_target

    t = resolve_target(target, list(targets_dirs) if targets_dirs else None)
    prof, _ = reg.resolve(t.profile)
    return calibrate_target(t, prof, threads=threads, deadline_s=deadline_s, accept_new_host_key=accept_new_host_key,
                            quick=quick)


def _bundle_path(bundle: "Bundle | str | Path") -> str:
    from .schemas.bundle import Bundle

    return str(bundle.path) if isinstance(bundle, Bundle) else str(bundle)


def deploy(bundle: "Bundle | str | Path", target: str, *, accept_new_host_key: bool = False, force: bool = False,
           targets_dirs: Sequence[str] | None = None, profiles_dir: Sequence[str] | None = None) -> "Release":
    """`edge-sdk deploy`: an atomic, verified release of the bundle on the target (a name or a target YAML)."""
    from .profiles import load_registry
    from .remote import deploy as deploy_bundle, resolve_target

    t = resolve_target(target, list(targets_dirs) if targets_dirs else None)
    registry = None if force else load_registry(list(profiles_dir or []))
    return deploy_bundle(_bundle_path(bundle), t, accept_new_host_key=accept_new_host_key, registry=registry)


def bench(bundle: "Bundle | str | Path | None" = None, *, target: str | None = None, release: str | None = None,
          settings: "BenchSettings | None" = None, targets_dirs: Sequence[str] | None = None,
          results_dir: str | Path | None = None, calibration: bool = True,
          calibrations_dir: str | Path | None = None, **settings_kw: Any) -> "BenchResult":
    """`edge-sdk bench`: run the bundle's device package here (no target) or on a target's release, and return the
    measurements next to the plan's prediction. `settings_kw` are BenchSettings fields (iterations=, batches=, ...).
    With `results_dir` the result is also saved there (results/<target>/<UTC time>.json). The prediction next to the
    measurement is re-costed with the device's newest matching calibration (`calibration=False`: as built)."""
    from pydantic import ValidationError

    from .benchmark import BenchSettings, bench_local, bench_remote, save_result
    from .errors import InputError, format_validation_error

    if settings is None:
        try:
            settings = BenchSettings(**settings_kw)
        except ValidationError as exc:
            raise InputError(format_validation_error("bench settings", exc)) from None
    elif settings_kw:
        raise InputError("bench: give settings= or setting keywords, not both")
    if target is None:
        if bundle is None:
            raise InputError("bench: give a bundle to benchmark here, or target= to benchmark on a device")
        result = bench_local(_bundle_path(bundle), settings, calibration=calibration,
                             calibrations_dir=calibrations_dir)
    else:
        result = bench_remote(target, release, settings, bundle=_bundle_path(bundle) if bundle else None,
                              targets_dirs=list(targets_dirs) if targets_dirs else None, calibration=calibration,
                              calibrations_dir=calibrations_dir)
    if results_dir is not None:
        save_result(result, results_dir)
    return result


def _group(targets, fleet, targets_dirs, profiles_dir):
    """(registry, Fleet or None, targets) for `--targets a,b,c` (a string or a list) or `--fleet NAME`."""
    from .profiles import load_registry
    from .remote.fleet import resolve_group

    reg = load_registry(list(profiles_dir or []))
    names = ",".join(targets) if isinstance(targets, (list, tuple)) else targets
    fl, tgs = resolve_group(names, fleet, list(targets_dirs) if targets_dirs else None, reg)
    return reg, fl, tgs


def deploy_fleet(bundle: "Bundle | str | Path", *, targets: "str | Sequence[str] | None" = None,
                 fleet: str | None = None, parallel: int | None = None, canary: int | None = None,
                 max_unavailable: int | None = None, latency_budget_ms: float | None = None,
                 accept_new_host_key: bool = False, force: bool = False, lock_wait_s: float = 300.0,
                 targets_dirs: Sequence[str] | None = None, profiles_dir: Sequence[str] | None = None,
                 board: Any = None) -> "FleetResult":
    """`edge-sdk deploy --targets a,b,c | --fleet NAME`: a rolling deploy. The bundle is verified once; `canary`
    devices go first and must pass the health check (the new release's runner on its sample inputs, p50 within
    `latency_budget_ms`), else the rollout stops and they are rolled back. Unset knobs come from the fleet file."""
    from .benchmark.fleet import bench_health_check
    from .remote.deploy import shippable
    from .remote.rollout import rollout

    reg, fl, tgs = _group(targets, fleet, targets_dirs, profiles_dir)
    pick = lambda given, name, default: given if given is not None else getattr(fl, name, default)  # noqa: E731
    budget = pick(latency_budget_ms, "latency_budget_ms", None)
    n_canary = pick(canary, "canary", 0)
    if budget is not None and not n_canary:
        from .errors import InputError

        raise InputError("a latency budget is checked on canaries: give --canary K (K >= 1) with it")
    check = bench_health_check(budget, accept_new_host_key=accept_new_host_key) if n_canary else None
    with shippable(_bundle_path(bundle)) as b:
        return rollout(b, tgs, parallel=pick(parallel, "parallel", 4), canary=n_canary,
                       max_unavailable=pick(max_unavailable, "max_unavailable", None), health_check=check,
                       board=board, fleet=fl, registry=None if force else reg, force=force,
                       accept_new_host_key=accept_new_host_key, lock_wait_s=lock_wait_s)


def bench_fleet(*, targets: "str | Sequence[str] | None" = None, fleet: str | None = None,
                parallel: int | None = None, settings: "BenchSettings | None" = None, release: str | None = None,
                bundle: "Bundle | str | Path | None" = None, results_dir: str | Path | None = "results",
                targets_dirs: Sequence[str] | None = None, calibration: bool = True,
                calibrations_dir: str | Path | None = None, board: Any = None) -> "FleetResult":
    """`edge-sdk bench --targets ... | --fleet NAME`: every device's release benchmarked, each result saved under
    results_dir/<target>/ (None: not saved) and in the FleetResult."""
    from .benchmark import BenchSettings
    from .benchmark.fleet import bench_fleet as run

    _, fl, tgs = _group(targets, fleet, targets_dirs, None)
    return run(tgs, settings or BenchSettings(), parallel=parallel or getattr(fl, "parallel", 4), release=release,
               bundle=_bundle_path(bundle) if bundle else None, results_dir=results_dir, board=board, fleet=fl,
               calibration=calibration, calibrations_dir=calibrations_dir)


def on_fleet(action: str, *, targets: "str | Sequence[str] | None" = None, fleet: str | None = None,
             parallel: int | None = None, to: str | None = None, threads: int | None = None,
             deadline_s: float = 900.0, accept_new_host_key: bool = False, calibrations_dir: str | Path | None = None,
             targets_dirs: Sequence[str] | None = None, profiles_dir: Sequence[str] | None = None,
             board: Any = None, quick: bool = False) -> "FleetResult":
    """`edge-sdk targets check | rollback | calibrate` with `--targets`/`--fleet`: action "check", "rollback" (to
    release `to`, default each device's previous one) or "calibrate" (saved under calibrations_dir/<target>/;
    `quick` as in calibrate())."""
    import time

    from .errors import InputError
    from .remote import check_target, rollback
    from .remote.fleet import Board, fleet_result, run_each

    reg, fl, tgs = _group(targets, fleet, targets_dirs, profiles_dir)
    kw = {"accept_new_host_key": accept_new_host_key}
    if action == "check":
        def one(t, rep):
            return check_target(t, reg.resolve(t.profile)[0], **kw)
    elif action == "rollback":
        def one(t, rep):
            return rollback(t, to=to, **kw)
    elif action == "calibrate":
        from .calibration import save_calibration
        from .calibration.run import calibrate_target, suite_for_profile

        for prof in {t.profile: reg.resolve(t.profile)[0] for t in tgs}.values():
            suite_for_profile(prof)  # made once per profile, before the devices share it

        def one(t, rep):
            rep.stage("calibrating")
            cal = calibrate_target(t, reg.resolve(t.profile)[0], threads=threads, deadline_s=deadline_s,
                                   show_progress=False, quick=quick, **kw)
            save_calibration(cal, calibrations_dir)
            return cal
    else:
        raise InputError(f"on_fleet: action must be check, rollback or calibrate, got {action!r}")
    t0 = time.monotonic()
    n = parallel or getattr(fl, "parallel", 4)
    outcomes = run_each(tgs, one, parallel=n, board=board or Board())
    return fleet_result(action, outcomes, parallel=n, seconds=time.monotonic() - t0, fleet=fl)


def report(model: Any = "minilm", *, devices: str = "all", results_dir: str | Path | None = "results",
           graph: "OpGraph | None" = None, bundle_sha256: str | None = None, batch: int = 1, seq_len: int = 128,
           objective: str = "latency", max_quality_drop: float = DEFAULT_MAX_QUALITY_DROP,
           pareto_device: str | None = None, tflite: str = "auto", graph_cache: str | Path | None = None,
           profiles_dir: Sequence[str] | None = None, progress: Progress | None = None, calibration: bool = True,
           calibrations_dir: str | Path | None = None) -> "CompatReport":
    """`edge-sdk report`: per-device compatibility of one model. Reads the model's OpGraph (given, or cached by the
    graph stage) instead of exporting; `edge_sdk.reporting.write_report(rep, dir)` writes JSON, Markdown and HTML."""
    from .reporting import build_report

    return build_report(str(model), devices=devices, results_dir=results_dir, bundle_sha256=bundle_sha256,
                        batch=batch, seq_len=seq_len, objective=objective, max_quality_drop=max_quality_drop,
                        pareto_device=pareto_device, profiles_dir=list(profiles_dir or []), graph=graph,
                        graph_cache=graph_cache, tflite=tflite, progress=progress, calibration=calibration,
                        calibrations_dir=calibrations_dir)


__all__ = ["bench", "bench_fleet", "build", "calibrate", "deploy", "deploy_fleet", "graph", "inspect", "on_fleet",
           "plan", "plan_devices", "report"]
