"""`mesainterp patch MODEL --sites KIND --out DIR`: activation or path patching on a task.

MODEL is a zoo model name, a checkpoint or run directory, or a HuggingFace model
directory (see `zoo.load_model`). The clean/corrupted pairs come from the model's task
(its counterfactual family, default the first) and the metric is the task's default
metric; with `--data FILE` they are the file's pairs, in file order, and the metric is
their logit difference (teacher-forced log-probability difference for multi-token
answers). The work is
`mesainterp.runs.patch_run.run_patch`, which lists the files written to DIR.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from mesainterp.cli.output import CommandResult
from mesainterp.patching.ablation import ABLATIONS, DIRECTIONS
from mesainterp.patching.engine import METHODS
from mesainterp.runs.options import RunOptions, add_data_options, add_run_options, data_from_args
from mesainterp.runs.patch_job import PatchJob
from mesainterp.runs.patch_run import run_patch
from mesainterp.schema import NON_NEGATIVE, POSITIVE, Range, option
from mesainterp.sites.named import SWEEPS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("patch", help="activation / path patching sweeps with CIs")
    p.add_argument(
        "model", help="a zoo model name, a checkpoint or run directory, or a HuggingFace directory"
    )
    p.add_argument("--sites", required=True, choices=SWEEPS, help="which site set to sweep")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--n",
        type=option(Range(lo=2)),
        default=None,
        help="number of counterfactual pairs (default 64; with --data, every row)",
    )
    p.add_argument("--ablation", default="resample", choices=ABLATIONS)
    p.add_argument("--direction", default="denoising", choices=DIRECTIONS)
    p.add_argument(
        "--family", default=None, help="counterfactual family (default: the task's first)"
    )
    p.add_argument("--seed", type=option(NON_NEGATIVE), default=0, help="pair and bootstrap seed")
    p.add_argument("--n-boot", type=option(POSITIVE), default=1000, help="bootstrap resamples")
    p.add_argument("--method", default="auto", choices=METHODS)
    add_data_options(p, uses="to patch instead of the task's")
    add_run_options(p, chunk_help="sites per resumable unit", chunk_default=16)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    options = RunOptions.from_args(args)
    prompts = data_from_args(args)
    n = args.n or (64 if prompts is None else prompts.n_rows)
    job = PatchJob(
        model=args.model, sweep=args.sites, n=n, seed=args.seed, family=args.family,
        direction=args.direction, ablation=args.ablation, method=args.method,
        data=None if prompts is None else prompts.to_dict(),
    )  # fmt: skip
    done = run_patch(
        job, args.out, n_boot=args.n_boot, chunk_size=args.chunk_size, options=options,
        command=args.command_line,
    )  # fmt: skip
    table, patching = done.result.table, done.result.provenance["patching"]
    best = table.loc[table["value"].abs().idxmax()] if len(table) else None
    data = {
        "out": str(done.out),
        "n_sites": len(table),
        "n": n,
        "family": done.family,
        "method": patching.get("method"),
        "clean_mean": patching.get("clean_mean"),
        "corrupted_mean": patching.get("corrupted_mean"),
        "top_site": None if best is None else _row(best),
        **done.stats.to_dict(),
    }
    text = f"{len(table)} sites patched ({data['method']}) -> {done.out}\n{done.stats.describe()}"
    if best is not None:
        text += f"\nlargest effect: {_row(best)}"
    return CommandResult(data=data, text=text)


def _row(row: Any) -> dict[str, Any]:
    def opt(v: Any) -> int | None:
        return None if pd.isna(v) else int(v)

    return {
        "kind": str(row["kind"]),
        "layer": int(row["layer"]),
        "head": opt(row["head"]),
        "position": opt(row["position"]),
        "value": float(row["value"]),
        "ci": [float(row["ci_low"]), float(row["ci_high"])],
    }
