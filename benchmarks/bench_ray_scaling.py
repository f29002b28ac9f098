"""A sharded patching sweep on Ray with 1 vs 2 workers (and in-process), same process.

The runs are interleaved (in-process, 1 worker, 2 workers, repeated), each into a
fresh run directory, and timed end to end: actor start and model load included,
since a real run pays them too. Every run's assembled values must equal the
in-process ones exactly. Prints one JSON line with medians and the 1 -> 2 worker
speed-up.

Run:  python benchmarks/bench_ray_scaling.py [--model tree-path --sites resid --n 16
                                              --chunk-size 4 --max-units 8 --reps 3]

The defaults finish in under a second in-process, so actor start-up dominates; the
README's scaling figure uses a sweep where the work shows:
      MESAINTERP_NO_PROGRESS=1 python benchmarks/bench_ray_scaling.py --sites heads-by-pos \
          --n 512 --chunk-size 32 --max-units 15 --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import ray
import torch

from mesainterp.runs.executor import execute, start_local_cluster
from mesainterp.runs.patch_job import PatchJob, assemble_sweep, build_patch_worker, patch_plan
from mesainterp.runs.plan import RunPlan
from mesainterp.runs.state import open_run

__all__: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tree-path")
    parser.add_argument("--sites", default="resid")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--max-units", type=int, default=8, help="first K units of the sweep")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    job = PatchJob(model=args.model, sweep=args.sites, n=args.n)
    local = build_patch_worker(**job.to_dict())
    full = patch_plan(job, local.sites, args.chunk_size)
    plan = RunPlan(units=full.units[: args.max_units])
    sites = local.sites[: plan.units[-1].payload["stop"]]
    start_local_cluster(2, attempts=5)
    times: dict[str, list[float]] = {"inprocess": [], "ray-1": [], "ray-2": []}
    reference = None
    try:
        for _ in range(args.reps):
            for name in times:
                with tempfile.TemporaryDirectory() as tmp:
                    state = open_run(tmp, identity={"job": job.to_dict()}, resume=False)
                    start = time.perf_counter()
                    execute(
                        job.worker_spec(),
                        plan,
                        state,
                        executor="inprocess" if name == "inprocess" else "ray",
                        workers=1 if name != "ray-2" else 2,
                        local_worker=local if name == "inprocess" else None,
                        progress=False,
                    )
                    times[name].append(time.perf_counter() - start)
                    values = assemble_sweep(plan, state, sites, job.spec).patched
                if reference is None:
                    reference = values
                elif not torch.equal(values, reference):
                    raise SystemExit(f"{name}: values differ from the in-process sweep")
    finally:
        ray.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "bench": "ray_scaling",
                "model": args.model,
                "sites": args.sites,
                "n_sites": len(sites),
                "units": len(plan),
                "n": args.n,
                "reps": args.reps,
                "median_s": {k: round(v, 3) for k, v in med.items()},
                "speedup_1_to_2_workers": round(med["ray-1"] / med["ray-2"], 3),
                "ray_2_vs_inprocess": round(med["ray-2"] / med["inprocess"], 3),
                "identical": True,
            }
        )
    )


if __name__ == "__main__":
    main()
