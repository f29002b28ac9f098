"""`mesainterp patch MODEL --sites KIND --out DIR`: activation or path patching on a task.

MODEL is a checkpoint directory or a zoo model name. The clean/corrupted pairs come
from the model's task (its counterfactual family, default the first) and the metric is
the task's default metric. Writes to DIR:

    results.parquet / results.csv   one row per site with bootstrap intervals
    per_example.safetensors         raw per-example metric values
    provenance.json                 versions, fingerprint, task config, command
    heatmap.png                     the effects drawn as a heatmap
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from mesainterp.cli.output import CommandResult
from mesainterp.errors import MesaInterpError
from mesainterp.model.build import model_shape
from mesainterp.model.checkpoint import Checkpoint, load_checkpoint
from mesainterp.patching.ablation import ABLATIONS, DIRECTIONS
from mesainterp.patching.api import summarise
from mesainterp.patching.results import PatchResult
from mesainterp.provenance import provenance
from mesainterp.runs.atomic import atomic_write
from mesainterp.runs.executor import execute
from mesainterp.runs.options import add_run_options, check_run_options
from mesainterp.runs.patch_job import PatchJob, assemble_sweep, patch_plan
from mesainterp.runs.state import open_run
from mesainterp.schema import NON_NEGATIVE, POSITIVE, Range, option
from mesainterp.sites import Site, head_sites, mlp_sites, resid_sites

__all__ = ["SWEEPS", "add_parser", "run"]

SWEEPS = ("resid", "heads", "heads-by-pos", "mlp", "path")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("patch", help="activation / path patching sweeps with CIs")
    p.add_argument("model", help="a checkpoint directory or a zoo model name")
    p.add_argument("--sites", required=True, choices=SWEEPS, help="which site set to sweep")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--n", type=option(Range(lo=2)), default=64, help="number of counterfactual pairs"
    )
    p.add_argument("--ablation", default="resample", choices=ABLATIONS)
    p.add_argument("--direction", default="denoising", choices=DIRECTIONS)
    p.add_argument(
        "--family", default=None, help="counterfactual family (default: the task's first)"
    )
    p.add_argument("--seed", type=option(NON_NEGATIVE), default=0, help="pair and bootstrap seed")
    p.add_argument("--n-boot", type=option(POSITIVE), default=1000, help="bootstrap resamples")
    p.add_argument("--method", default="auto", choices=("auto", "fast", "hooks"))
    add_run_options(p, chunk_help="sites per resumable unit", chunk_default=16)
    p.set_defaults(run=run)


def _load(name: str) -> tuple[Checkpoint, Any]:
    from mesainterp.tasks.registry import task_from_config

    if Path(name).is_dir():
        ckpt = load_checkpoint(name)
        if ckpt.task is None:
            raise MesaInterpError(f"{name}: checkpoint records no task to generate pairs from")
        return ckpt, task_from_config(ckpt.task)
    try:
        zoo = importlib.import_module("mesainterp.zoo")
    except ImportError:
        raise MesaInterpError(f"{name}: not a checkpoint directory") from None
    return zoo.load(name), zoo.load_task(name)


def _sites(sweep: str, model: Any, seq_len: int) -> list[Site]:
    shape = model_shape(model)
    if sweep == "resid":
        return resid_sites(shape, seq_len=seq_len)
    if sweep == "heads":
        return head_sites(shape)
    if sweep == "heads-by-pos":
        return head_sites(shape, seq_len=seq_len, by_pos=True)
    if sweep == "mlp":
        return mlp_sites(shape, seq_len=seq_len)
    # path: every head and MLP as a sender, straight into the logits (direct effects).
    senders = head_sites(shape)
    if not shape.attn_only:
        senders += mlp_sites(shape, by_pos=False)
    return senders


def _minimal_heatmap(grid: pd.DataFrame, xlabel: str, title: str) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(12.0, 2 + 0.3 * grid.shape[1]), 1 + 0.25 * grid.shape[0]))
    ax = fig.add_subplot()
    values = grid.to_numpy(dtype=float)
    limit = max(1e-9, float(abs(values[values == values]).max(initial=1.0)))
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="effect")
    return fig


def _heatmap(table: pd.DataFrame, sweep: str, path: Path, title: str) -> None:
    """Draw with the viz package's heatmap where it fits, else a minimal one."""
    if sweep == "heads-by-pos":
        # The viz heatmap draws layer × one axis; here rows are (layer, head) pairs.
        labelled = table.assign(row=[f"L{r.layer}H{r.head}" for r in table.itertuples()])
        grid = labelled.pivot_table(index="row", columns="position", values="value", sort=False)
        fig = _minimal_heatmap(grid, "position", title)
    else:
        x = "head" if sweep in ("heads", "path") else "position"
        rows = table[table["kind"] == "z"] if sweep == "path" else table
        try:
            from mesainterp.viz.patching import patching_heatmap_mpl

            fig = patching_heatmap_mpl(rows, x=x, title=title)  # type: ignore[arg-type]
        except ImportError:  # pragma: no cover - viz ships with the package
            grid = rows.pivot_table(index="layer", columns=x, values="value")
            fig = _minimal_heatmap(grid, x, title)
    fig.savefig(path, dpi=150, bbox_inches="tight")


def run(args: argparse.Namespace) -> CommandResult:
    if args.n < 2:
        raise MesaInterpError(f"--n: need at least 2 pairs for intervals, got {args.n}")
    check_run_options(args)
    ckpt, task = _load(args.model)
    model = ckpt.model
    pair = task.counterfactual_pairs(args.n, seed=args.seed, family=args.family)
    metric = task.default_metric(pair)
    sites = _sites(args.sites, model, pair.clean.seq_len)
    # Workers rebuild the sweep from this job (model by name or absolute path).
    job = PatchJob(
        model=str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model,
        sweep=args.sites,
        n=args.n,
        seed=args.seed,
        family=args.family,
        direction=args.direction,
        ablation=args.ablation,
        method=args.method,
    )
    state = open_run(
        args.out,
        identity={
            "command": "patch",
            "model_fingerprint": ckpt.fingerprint,
            "job": job.to_dict(),
            "n_boot": args.n_boot,
        },
        resume=args.resume,
    )
    plan = patch_plan(job, sites, args.chunk_size)
    stats = execute(
        job.worker_spec(),
        plan,
        state,
        executor=args.executor,
        workers=args.workers,
        address=args.ray_address,
    )
    values = assemble_sweep(plan, state, sites, job.spec)
    prov = provenance(model_fingerprint=ckpt.fingerprint, model_name=args.model, seed=args.seed)
    if args.sites == "path":
        prov["patching"] = {
            "kind": "path",
            "receivers": [{"kind": "logits", "layer": None, "head": None}],
            "metric": getattr(metric, "__qualname__", type(metric).__name__),
        }
    else:
        prov["patching"] = {
            "metric": f"{task.name}:{pair.family}:default_metric",
            "n_sites": len(values.sites),
            "input_shape": list(pair.clean.inputs.shape),
        }
    result: PatchResult = summarise(values, n_boot=args.n_boot, seed=args.seed, prov=prov)
    result.provenance.update(
        {
            "model_fingerprint": ckpt.fingerprint,
            "config": {"model": ckpt.config.to_dict(), "task": task.config_dict()},
            "command": getattr(args, "command_line", None) or ["mesainterp", *sys.argv[1:]],
        }
    )
    result.provenance["patching"]["family"] = pair.family
    result.provenance["patching"]["sweep"] = args.sites
    result.provenance["run"] = stats.to_dict()
    out = result.save(args.out)
    title = f"{args.sites} ({args.direction}, {args.ablation}), n={args.n}"
    atomic_write(out / "heatmap.png", lambda temp: _heatmap(result.table, args.sites, temp, title))
    state.mark_complete()
    table = result.table
    best = table.loc[table["value"].abs().idxmax()] if len(table) else None
    data = {
        "out": str(out),
        "n_sites": len(table),
        "n": args.n,
        "family": pair.family,
        "method": result.provenance["patching"].get("method"),
        "clean_mean": result.provenance["patching"].get("clean_mean"),
        "corrupted_mean": result.provenance["patching"].get("corrupted_mean"),
        "top_site": None if best is None else _row(best),
        **stats.to_dict(),
    }
    text = f"{len(table)} sites patched ({data['method']}) -> {out}\n{stats.describe()}"
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
