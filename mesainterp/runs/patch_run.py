"""A whole patching sweep into a run directory: what `mesainterp patch` runs.

`run_patch` loads the model, draws the task's counterfactual pairs, splits the named
sweep into resumable units, runs the missing ones (in-process or on Ray), assembles
them into the single-pass result and writes, to `out`:

    results.parquet / results.csv   one row per site with bootstrap intervals
    per_example.safetensors         raw per-example metric values
    provenance.json                 versions, fingerprint, task config, command
    heatmap.png                     the effects drawn as a heatmap

A notebook calls it as the command line does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mesainterp.atomic import atomic_write
from mesainterp.errors import ConfigError
from mesainterp.patching.api import summarise
from mesainterp.patching.results import PatchResult
from mesainterp.prompts.positions import label_positions
from mesainterp.prompts.task import PromptData, PromptTask
from mesainterp.provenance_stamp import provenance
from mesainterp.runs.executor import ExecutionStats, execute
from mesainterp.runs.options import RunOptions
from mesainterp.runs.patch_job import PatchJob, PatchWorker, assemble_sweep, patch_plan
from mesainterp.runs.state import open_run
from mesainterp.zoo.loader import load_model

__all__ = ["PatchRun", "run_patch"]


@dataclass(frozen=True, kw_only=True)
class PatchRun:
    """The saved result of a sweep, where it was written, and how its units ran."""

    result: PatchResult
    out: Path
    stats: ExecutionStats
    family: str


def run_patch(
    job: PatchJob,
    out: str | os.PathLike[str],
    *,
    n_boot: int = 1000,
    chunk_size: int = 16,
    options: RunOptions | None = None,
    command: Sequence[str] | None = None,
) -> PatchRun:
    """Run `job` into `out` (resumable); `command` is the argv recorded in the provenance.

    `job.model` is a zoo name or a directory; workers reload it from its resolved
    reference, so a Ray actor finds the same model.
    """
    options = options or RunOptions()
    if job.n < 2:
        raise ConfigError("n", f"need at least 2 pairs for intervals, got {job.n}")
    data = None if job.data is None else PromptData.from_dict(job.data)
    if data is not None:  # the file's problems are named before the model loads
        PromptTask(data).check_count(job.n, "--n")
    loaded = load_model(job.model)
    job = PatchJob(**(job.to_dict() | {"model": loaded.source.ref}))
    worker = PatchWorker(job, loaded)
    task, pair = worker.task, worker.pair
    labels = task.position_labels if isinstance(task, PromptTask) else None
    identity = {"command": "patch", "model_fingerprint": loaded.fingerprint,
                "job": job.to_dict(), "n_boot": n_boot}  # fmt: skip
    if data is not None:  # an edited file never reuses the old file's units
        identity["data_sha256"] = data.sha256
    state = open_run(out, identity=identity, resume=options.resume)
    plan = patch_plan(job, worker.sites, chunk_size)
    local = worker if options.executor == "inprocess" else None
    stats = execute(job.worker_spec(), plan, state, local_worker=local, **options.execute_kwargs())
    values = assemble_sweep(plan, state, worker.sites, job.spec)
    prov = provenance(model_fingerprint=loaded.fingerprint, model_name=loaded.name, seed=job.seed)
    if job.sweep == "path":
        prov["patching"] = {
            "kind": "path",
            "receivers": [{"kind": "logits", "layer": None, "head": None}],
            "metric": getattr(worker.metric, "__qualname__", type(worker.metric).__name__),
        }
    else:
        prov["patching"] = {
            "metric": f"{task.name}:{pair.family}:default_metric",
            "n_sites": len(values.sites),
            "input_shape": list(pair.clean.inputs.shape),
        }
    result = summarise(values, n_boot=n_boot, seed=job.seed, prov=prov)
    config = None if loaded.config is None else loaded.config.to_dict()
    result.provenance.update(
        {
            "model_fingerprint": loaded.fingerprint,
            "config": {"model": config, "task": task.config_dict()},
            "command": None if command is None else list(command),
        }
    )
    result.provenance["patching"] |= {"family": pair.family, "sweep": job.sweep}
    result.provenance["run"] = stats.to_dict()
    if labels is not None:
        result.provenance["patching"]["position_labels"] = list(labels)
        table = result.table
        table["position_label"] = label_positions(labels, list(table["position"]))
    saved = result.save(out)
    title = f"{job.sweep} ({job.direction}, {job.ablation}), n={job.n}"
    atomic_write(
        saved / "heatmap.png",
        lambda temp: _heatmap(result.table, job.sweep, temp, title, labels),
    )
    if labels is not None:
        _write_manifest(saved, result.provenance, command, labels, title)
    state.mark_complete()
    return PatchRun(result=result, out=saved, stats=stats, family=pair.family)


def _rows_heatmap(grid: pd.DataFrame, xlabel: str, title: str) -> Any:
    """A plain heatmap of a (row label × column) grid, for rows the viz heatmap does not
    draw: heads by position has one row per (layer, head)."""
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


def _write_manifest(
    out: Path,
    prov: dict[str, Any],
    command: Sequence[str] | None,
    labels: Sequence[str],
    title: str,
) -> None:
    """run.json for a run on a prompt-pair file, so the report names its positions."""
    from mesainterp.report import write_run

    result = {"name": "patching", "kind": "patching", "path": "results.parquet",
              "position_labels": list(labels)}  # fmt: skip
    write_run(out, command=list(command or []), provenance=prov, results=[result], title=title)


def _heatmap(
    table: pd.DataFrame,
    sweep: str,
    path: Path,
    title: str,
    labels: Sequence[str] | None = None,
) -> None:
    if sweep == "heads-by-pos":
        labelled = table.assign(row=[f"L{r.layer}H{r.head}" for r in table.itertuples()])
        grid = labelled.pivot_table(index="row", columns="position", values="value", sort=False)
        if labels is not None:
            grid.columns = label_positions(labels, [int(c) for c in grid.columns])
        fig = _rows_heatmap(grid, "position", title)
    else:
        from mesainterp.viz.patching import patching_heatmap

        rows = table[table["kind"] == "z"] if sweep == "path" else table
        fig = patching_heatmap(
            rows,
            x="head" if sweep in ("heads", "path") else "position",
            title=title,
            position_labels=labels,
            backend="matplotlib",
        )
    fig.savefig(path, dpi=150, bbox_inches="tight")
