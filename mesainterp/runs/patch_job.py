"""Patching sweeps as resumable units: each unit patches one chunk of sites.

Every site's per-example values depend only on that site and the shared clean and
corrupted runs, so a sweep split into chunks and concatenated in site order gives
exactly the single-pass values; normalisation and the bootstrap then run once on
the assembled matrix, as `patch_pair` / `path_patch` do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from mesainterp.errors import MesaInterpError
from mesainterp.model.build import model_shape
from mesainterp.patching.ablation import AblationKind, Direction, PatchSpec
from mesainterp.patching.engine import Method, SweepValues, run_sweep
from mesainterp.patching.path import Receiver, run_path_sweep
from mesainterp.prompts.task import PromptData, task_for
from mesainterp.runs.executor import WorkerSpec
from mesainterp.runs.plan import RunPlan, WorkUnit, chunk_plan
from mesainterp.runs.state import RunState
from mesainterp.sites.named import SweepName, named_sites
from mesainterp.sites.site import Site
from mesainterp.zoo.loader import LoadedModel, load_model

__all__ = ["PatchJob", "PatchWorker", "assemble_sweep", "build_patch_worker", "patch_plan"]


@dataclass(frozen=True, kw_only=True)
class PatchJob:
    """Everything a worker needs to rebuild the sweep: model by name or path, never by value."""

    model: str
    sweep: SweepName
    n: int
    seed: int = 0
    family: str | None = None
    direction: Direction = "denoising"
    ablation: AblationKind = "resample"
    method: Method = "auto"
    # A prompt-pair file (`PromptData.to_dict()`): its pairs replace the task's.
    data: dict[str, Any] | None = None

    @property
    def spec(self) -> PatchSpec:
        return PatchSpec(direction=self.direction, ablation=self.ablation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def worker_spec(self) -> WorkerSpec:
        return WorkerSpec(
            factory="mesainterp.runs.patch_job:build_patch_worker", kwargs=self.to_dict()
        )


class PatchWorker:
    """Draws the pairs and builds the sites once, then patches chunks of sites."""

    def __init__(self, job: PatchJob, loaded: LoadedModel) -> None:
        self.job = job
        self.loaded = loaded
        self.model = loaded.model
        data = None if job.data is None else PromptData.from_dict(job.data)
        self.task = task_for(loaded, data, "generate counterfactual pairs from")
        self.pair = self.task.counterfactual_pairs(job.n, seed=job.seed, family=job.family)
        self.metric = self.task.default_metric(self.pair)
        self.sites: list[Site] = named_sites(
            job.sweep, model_shape(self.model), seq_len=self.pair.clean.seq_len
        )

    def run(self, unit: WorkUnit) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        chunk = self.sites[unit.payload["start"] : unit.payload["stop"]]
        common: dict[str, Any] = {
            "clean": self.pair.clean.inputs,
            "corrupted": self.pair.corrupted.inputs,
            "metric": self.metric,
            "batch": self.pair.clean,
            "spec": self.job.spec,
        }
        values: SweepValues
        if self.job.sweep == "path":
            values = run_path_sweep(self.model, chunk, [Receiver(kind="logits")], **common)
        else:
            values = run_sweep(self.model, chunk, method=self.job.method, **common)
        tensors = {"patched": values.patched, "clean": values.clean, "corrupted": values.corrupted}
        return tensors, {"method": values.method, "fallback_reason": values.fallback_reason}


def build_patch_worker(**job: Any) -> PatchWorker:
    """The worker of a `PatchJob` given as JSON (what a Ray actor receives): it loads
    the model itself, by zoo name or absolute path."""
    spec = PatchJob(**job)
    return PatchWorker(spec, load_model(spec.model))


def patch_plan(job: PatchJob, sites: list[Site], chunk_size: int) -> RunPlan:
    """Units of `chunk_size` sites; keys hash the sites and the job."""
    described = [[s.kind, s.layer, s.head, s.pos] for s in sites]
    return chunk_plan("sites", described, chunk_size, context=job.to_dict())


def assemble_sweep(
    plan: RunPlan, state: RunState, sites: list[Site], spec: PatchSpec
) -> SweepValues:
    """Concatenate the saved units in plan order into the single-pass `SweepValues`."""
    rows: list[torch.Tensor] = []
    methods: list[str] = []
    reasons: list[str | None] = []
    clean: torch.Tensor | None = None
    corrupted: torch.Tensor | None = None
    for unit in plan.units:
        tensors, meta = state.load_unit(unit.key)
        expected = unit.payload["stop"] - unit.payload["start"]
        if tensors["patched"].shape[0] != expected:
            raise MesaInterpError(
                f"unit {unit.key}: {tensors['patched'].shape[0]} rows, expected {expected}"
            )
        if clean is None or corrupted is None:
            clean, corrupted = tensors["clean"], tensors["corrupted"]
        elif not (
            torch.equal(clean, tensors["clean"]) and torch.equal(corrupted, tensors["corrupted"])
        ):
            raise MesaInterpError(f"unit {unit.key}: clean/corrupted baselines differ from unit 0")
        rows.append(tensors["patched"])
        methods.append(str(meta.get("method")))
        reasons.append(meta.get("fallback_reason"))
    if clean is None or corrupted is None:
        raise MesaInterpError("the sweep has no sites")
    return SweepValues(
        sites=list(sites),
        patched=torch.cat(rows),
        clean=clean,
        corrupted=corrupted,
        spec=spec,
        method=methods[0] if len(set(methods)) == 1 else "mixed",
        fallback_reason=next((r for r in reasons if r), None),
    )
