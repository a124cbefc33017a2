"""How long planning takes: MiniLM and a 7B decoder config against every shipped profile.

Goals (issue 3): MiniLM against every profile < 1 s; a 7B config (meta device, no weights) against every profile
< 3 s. Inspection (building the ModelSpec) is timed separately from planning; both are printed, with the median
and spread of several repeats, because this machine is shared and noisy.

    .venv/bin/python benchmarks/plan_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from edge_sdk.errors import InfeasibleError
from edge_sdk.modelspec import inspect_model
from edge_sdk.planner import Constraints, plan_for_profile
from edge_sdk.profiles import load_registry

ROOT = Path(__file__).resolve().parents[1]


def plan_all(spec, profiles) -> tuple[int, int]:
    ok = bad = 0
    for prof in profiles:
        try:
            plan_for_profile(spec, prof, model=spec.name, constraints=Constraints())
            ok += 1
        except InfeasibleError:
            bad += 1
    return ok, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    profiles = list(load_registry().profiles.values())
    print(f"{len(profiles)} profiles, {args.repeats} repeats each (median [min–max])")
    for model, goal in (("minilm", 1.0), (str(ROOT / "examples/configs/llama-7b.json"), 3.0)):
        t_inspect, t_plan, t_total = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            spec = inspect_model(model, batch=1, seq_len=128)
            t1 = time.perf_counter()
            ok, bad = plan_all(spec, profiles)
            t2 = time.perf_counter()
            t_inspect.append(t1 - t0)
            t_plan.append(t2 - t1)
            t_total.append(t2 - t0)
        med = statistics.median
        verdict = "OK" if med(t_total) < goal else "SLOWER THAN GOAL"
        print(f"{spec.name:>18}: inspect {med(t_inspect):.3f} s [{min(t_inspect):.3f}–{max(t_inspect):.3f}], "
              f"plan all {med(t_plan):.3f} s [{min(t_plan):.3f}–{max(t_plan):.3f}], "
              f"total {med(t_total):.3f} s (goal < {goal:g} s: {verdict}); {ok} feasible, {bad} infeasible")


if __name__ == "__main__":
    main()
