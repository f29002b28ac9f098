"""Which labels each task offers the battery, and the activations every probe test reads.

A task profile names the goal label, the search-state label and the positions
the tests read; `collect_inputs` caches the residual stream of the model and of
its random-init twin there once, so the probe tests share one pass over the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mesainterp.errors import MesaInterpError, allowed
from mesainterp.model.build import model_shape
from mesainterp.probes.dataset import ActivationDataset, collect_activations, probe_sites
from mesainterp.progress import progress_bar
from mesainterp.tasks.base import Task

__all__ = ["PROFILES", "EvidenceInputs", "TaskProfile", "collect_inputs", "profile_for"]


@dataclass(frozen=True, kw_only=True)
class TaskProfile:
    """What the battery reads from one task.

    kind:          "path" (token tasks whose answer is a path to a goal) or
                   "regression" (icl-regression).
    goal_label:    the label naming the goal (path tasks).
    state_label:   the search state probed layer by layer: the goal's ancestors
                   (tree-path, column k-1 = k-th ancestor) or the path itself
                   (column k = k-th step), or the query target (regression).
    state_first:   the first column of `state_label` the iterative test probes.
    """

    kind: Literal["path", "regression"]
    goal_label: str | None
    state_label: str
    state_first: int


PROFILES: dict[str, TaskProfile] = {
    "tree-path": TaskProfile(kind="path", goal_label="goal", state_label="ancestors", state_first=0),
    "maze": TaskProfile(kind="path", goal_label="target", state_label="path", state_first=1),
    "graph-search": TaskProfile(kind="path", goal_label="goal", state_label="path", state_first=1),
    "icl-regression": TaskProfile(kind="regression", goal_label=None, state_label="ys", state_first=-1),
}  # fmt: skip


def profile_for(task: Task) -> TaskProfile:
    """The profile of `task`, refusing a task the battery does not know."""
    name = getattr(task, "name", None)
    if name not in PROFILES:
        raise MesaInterpError(
            f"task: the evidence battery has no profile for {name!r} (allowed: {allowed(PROFILES)})"
        )
    return PROFILES[name]


@dataclass(frozen=True, kw_only=True)
class EvidenceInputs:
    """The model, its control twin, its task, and resid_post activations of both.

    query_pos:  the position that predicts the first answer token (or the query's y).
    goal_pos:   the first position whose activations goal retargeting edits.
    data/twin_data: resid_post of every layer at positions goal_pos..seq_len-1
                (path tasks) or at query_pos (regression), over the same examples.
    """

    model: Any
    twin: Any
    task: Task
    profile: TaskProfile
    query_pos: int
    goal_pos: int
    n_layers: int
    data: ActivationDataset
    twin_data: ActivationDataset

    def at(self, pos: int, *, twin: bool = False) -> ActivationDataset:
        """The activations of every layer at one position (sites in layer order)."""
        source = self.twin_data if twin else self.data
        idx = [i for i, s in enumerate(source.sites) if s.pos == pos]
        if not idx:
            raise MesaInterpError(f"pos: {pos} was not collected")
        return ActivationDataset(
            sites=tuple(source.sites[i] for i in idx),
            features=source.features[idx],
            labels=source.labels,
            metadata=source.metadata,
        )


def collect_inputs(
    model: Any,
    twin: Any,
    task: Task,
    *,
    n_examples: int,
    seed: int,
    batch_size: int = 200,
    progress: bool | None = None,
) -> EvidenceInputs:
    """Run the model and its twin over `n_examples` fresh examples (seeded) once."""
    profile = profile_for(task)
    shape = model_shape(model)
    if model_shape(twin) != shape:
        raise MesaInterpError("control: the random-init twin must have the model's shape")
    probe = task.sample(1, seed=seed)
    query_pos = probe.prompt_len - 1
    if profile.kind == "path":
        goal_pos = int(getattr(task, "goal_pos", query_pos))
        positions = list(range(goal_pos, probe.seq_len))
    else:
        goal_pos = query_pos
        positions = [query_pos]
    sites = probe_sites(shape, positions)
    starts = list(range(0, n_examples, batch_size))
    batches = [
        task.sample(min(batch_size, n_examples - s), seed=seed + i) for i, s in enumerate(starts)
    ]
    meta = {"task": task.config_dict(), "n_examples": n_examples, "seed": seed}
    data, twin_data = (
        collect_activations(m, progress_bar(batches, desc=f"activations ({who})",
                                            progress=progress), sites, metadata=meta)
        for who, m in (("model", model), ("twin", twin))
    )  # fmt: skip
    return EvidenceInputs(
        model=model,
        twin=twin,
        task=task,
        profile=profile,
        query_pos=query_pos,
        goal_pos=goal_pos,
        n_layers=shape.n_layers,
        data=data,
        twin_data=twin_data,
    )
