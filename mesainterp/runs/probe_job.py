"""Probe sweeps as resumable units: each unit probes one chunk of sites.

A unit collects activations for its sites only (from the model and its random-init
twin) and runs the probes with all controls; the rows of the chunks, in site order,
form the sweep's table. Probes are fitted per site, so the values match the
single-pass sweep; standard errors may differ in the last bits (~1e-17), since the
batched reduction over sites sums in a different order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch

from mesainterp.errors import MesaInterpError
from mesainterp.probes.controls import TABLE_COLUMNS, KindOrAuto, ProbeSpec, run_probes
from mesainterp.probes.dataset import collect_activations, probe_sites, task_batches
from mesainterp.prompts.task import PromptTask
from mesainterp.runs.executor import WorkerSpec
from mesainterp.runs.plan import RunPlan, WorkUnit, chunk_plan
from mesainterp.runs.state import RunState
from mesainterp.sites.site import ProbeSiteKind, Site
from mesainterp.tasks.base import Task

__all__ = ["ProbeJob", "ProbeWorker", "assemble_probe_table", "collect_for_job", "probe_plan"]


@dataclass(frozen=True, kw_only=True)
class ProbeJob:
    """Everything a worker needs to rebuild the probe sweep; the model by name or path.

    positions: the probed positions; () means every position of the task
    (`run_probe_pipeline` fills them in before the run starts).
    """

    model: str
    target: str
    positions: tuple[int, ...]
    site_kind: ProbeSiteKind = "resid_post"
    kind: KindOrAuto = "auto"
    label_column: int | None = None
    n_examples: int = 2000
    batch_size: int = 250
    C: float = 1.0
    alpha: float = 1.0
    folds: int = 5
    seed: int = 0
    max_memory_mb: int = 1024
    # A prompt-pair file (`PromptData.to_dict()`): its rows and label columns replace
    # the task's examples.
    data: dict[str, Any] | None = None

    @property
    def spec(self) -> ProbeSpec:
        return ProbeSpec(
            target=self.target,
            kind=self.kind,
            label_column=self.label_column,
            C=self.C,
            alpha=self.alpha,
            folds=self.folds,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["positions"] = list(self.positions)
        return out

    def worker_spec(self) -> WorkerSpec:
        return WorkerSpec(factory="mesainterp.runs.probe_job:ProbeWorker", kwargs=self.to_dict())


def collect_for_job(job: ProbeJob, task: Task, model: Any, sites: Sequence[Site]) -> Any:
    """The job's activation dataset at `sites` from `model` (the same examples every time)."""
    batches: Any
    if isinstance(task, PromptTask):  # the file's rows in order; nothing is sampled
        batches = list(task.batches(job.n_examples, batch_size=job.batch_size))
    else:
        batches = task_batches(task, job.n_examples, batch_size=job.batch_size, seed=job.seed)
    meta = {"task": task.config_dict(), "n_examples": job.n_examples, "seed": job.seed}
    limit = job.max_memory_mb * (1 << 20)
    return collect_activations(model, batches, sites, max_memory_bytes=limit, metadata=meta)


class ProbeWorker:
    """Loads the model, its task and its random-init twin once; probes chunks of sites."""

    def __init__(self, **job: Any) -> None:
        from mesainterp.model.build import model_shape
        from mesainterp.runs.probe_pipeline import load_probe_model

        job["positions"] = tuple(job["positions"])
        self.job = ProbeJob(**job)
        self.checkpoint, self.task, self.twin = load_probe_model(self.job.model, self.job.data)
        shape = model_shape(self.checkpoint.model)
        self.sites = probe_sites(shape, list(self.job.positions), kind=self.job.site_kind)

    def collect(self, model: Any, sites: Sequence[Site]) -> Any:
        return collect_for_job(self.job, self.task, model, sites)

    def run(self, unit: WorkUnit) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        chunk = self.sites[unit.payload["start"] : unit.payload["stop"]]
        data = collect_for_job(self.job, self.task, self.checkpoint.model, chunk)
        twin = collect_for_job(self.job, self.task, self.twin, chunk)
        table = run_probes(data, self.job.spec, random_init=twin).table
        # Floats survive JSON exactly (shortest round-trip repr); NaN included.
        return {}, {"rows": table.to_dict(orient="records"), "dataset": data.metadata}


def probe_plan(job: ProbeJob, sites: Sequence[Site], chunk_size: int) -> RunPlan:
    described = [[s.layer, s.pos, s.hook_name] for s in sites]
    return chunk_plan("probes", described, chunk_size, context=job.to_dict())


def assemble_probe_table(plan: RunPlan, state: RunState) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The sweep's table from the saved units, in plan order, and the dataset metadata."""
    rows: list[dict[str, Any]] = []
    dataset: dict[str, Any] = {}
    for unit in plan.units:
        _, meta = state.load_unit(unit.key)
        expected = unit.payload["stop"] - unit.payload["start"]
        if len(meta.get("rows", [])) != expected:
            raise MesaInterpError(f"unit {unit.key}: expected {expected} probe rows")
        rows.extend(meta["rows"])
        dataset = meta.get("dataset", dataset)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), dataset
