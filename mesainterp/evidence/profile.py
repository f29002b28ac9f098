"""Which labels each task offers the battery, and the activations every probe test reads.

A task profile names the goal label, the search-state label and the node count;
`collect_inputs` caches the model's residual stream at every position and every
layer once, and each random-init twin's at the declared positions only, so the
probe tests share one pass over the data.

Declared positions (fixed here, before any data is seen):
- `goal_pos`: the goal token (maze: the target token), where goal-dependent
  work starts; the prompt position a model must read the goal from.
- `query_pos`: the ":" position; on every path task it predicts path[0] (the
  root, start or origin), which does not depend on the goal.
- `decision_pos`: the first answer position whose next-token target depends on
  the goal: `prompt_len`, which reads path[0] and predicts path[1]. The
  verdicts of the goal and look-ahead tests are read here; icl-regression uses
  its query position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from mesainterp.errors import MesaInterpError, allowed
from mesainterp.model.build import model_shape
from mesainterp.probes.dataset import ActivationDataset, collect_activations, probe_sites
from mesainterp.progress import progress_bar
from mesainterp.tasks.base import Task

__all__ = [
    "PROFILES",
    "EvidenceInputs",
    "TaskProfile",
    "collect_inputs",
    "declared_positions",
    "profile_for",
]


@dataclass(frozen=True, kw_only=True)
class TaskProfile:
    """What the battery reads from one task.

    kind:          "path" (token tasks whose answer is a path to a goal) or
                   "regression" (icl-regression).
    goal_label:    the label naming the goal (path tasks).
    start_label:   the label naming where the path starts, if the prompt gives it.
    goal_pos_attr: the task attribute giving the goal token's position.
    state_label:   the search state probed layer by layer: the goal's ancestors
                   (tree-path, column k-1 = k-th ancestor) or the path itself
                   (column k = k-th step), or the query target (regression).
    node_attr:     the task attribute giving the number of node tokens.
    """

    kind: Literal["path", "regression"]
    goal_label: str | None
    start_label: str | None = None
    goal_pos_attr: str | None = None
    state_label: str
    node_attr: str | None = None


PROFILES: dict[str, TaskProfile] = {
    "tree-path": TaskProfile(
        kind="path", goal_label="goal", goal_pos_attr="goal_pos", state_label="ancestors",
        node_attr="n_nodes",
    ),
    "maze": TaskProfile(
        kind="path", goal_label="target", start_label="origin", goal_pos_attr="target_pos",
        state_label="path", node_attr="n_cells",
    ),
    "graph-search": TaskProfile(
        kind="path", goal_label="goal", start_label="start", goal_pos_attr="goal_pos",
        state_label="path", node_attr="n_vertices",
    ),
    "icl-regression": TaskProfile(kind="regression", goal_label=None, state_label="ys"),
}  # fmt: skip


def profile_for(task: Task) -> TaskProfile:
    """The profile of `task`, refusing a task the battery does not know."""
    name = getattr(task, "name", None)
    if name not in PROFILES:
        raise MesaInterpError(
            f"task: the evidence battery has no profile for {name!r} (allowed: {allowed(PROFILES)})"
        )
    return PROFILES[name]


def declared_positions(task: Task) -> tuple[int, int, int]:
    """(goal_pos, query_pos, decision_pos) of `task` (see the module docstring).

    A path task without its goal-position attribute is refused (no silent fallback).
    """
    profile = profile_for(task)
    prompt_len = task.sample(1, seed=0).prompt_len
    query_pos = prompt_len - 1
    if profile.kind == "regression":
        return query_pos, query_pos, query_pos
    attr = profile.goal_pos_attr
    if attr is None or not hasattr(task, attr):
        raise MesaInterpError(f"task: {task.name!r} has no {attr!r} (the goal token's position)")
    return int(getattr(task, attr)), query_pos, prompt_len


@dataclass(frozen=True, kw_only=True)
class EvidenceInputs:
    """The model, its random-init twins, its task, and resid_post activations.

    data:       the model's resid_post at every layer and every position (path
                tasks) or at the query position (regression).
    twin_data:  one dataset per random-init twin, at the declared positions only.
    tokens:     the inputs [n, seq] the activations were read from.
    """

    model: Any
    twins: tuple[Any, ...]
    task: Task
    profile: TaskProfile
    query_pos: int
    goal_pos: int
    decision_pos: int
    n_layers: int
    data: ActivationDataset
    twin_data: tuple[ActivationDataset, ...]
    tokens: Tensor

    @property
    def twin(self) -> Any:
        """The first random-init twin (the one stateful tests run against)."""
        return self.twins[0]

    @property
    def positions(self) -> list[int]:
        return sorted({s.pos for s in self.data.sites if s.pos is not None})

    def at(self, pos: int, *, twin: int | None = None) -> ActivationDataset:
        """The activations of every layer at one position (sites in layer order)."""
        source = self.data if twin is None else self.twin_data[twin]
        idx = [i for i, s in enumerate(source.sites) if s.pos == pos]
        if not idx:
            raise MesaInterpError(f"pos: {pos} was not collected")
        return ActivationDataset(
            sites=tuple(source.sites[i] for i in idx),
            features=source.features[idx],
            labels=source.labels,
            metadata=source.metadata,
        )

    def features_at(self, positions: Sequence[int]) -> Tensor:
        """The model's features [positions, layers, n, d] at `positions`."""
        return torch.stack([self.at(p).features for p in positions])


def collect_inputs(
    model: Any,
    twins: Any,
    task: Task,
    *,
    n_examples: int,
    seed: int,
    batch_size: int = 200,
    progress: bool | None = None,
) -> EvidenceInputs:
    """Run the model (every position) and its twins (declared positions) once.

    twins: one random-init twin or a sequence of them (one per seed).
    """
    profile = profile_for(task)
    shape = model_shape(model)
    twin_list = tuple(twins) if isinstance(twins, list | tuple) else (twins,)
    if not twin_list:
        raise MesaInterpError("control: expected at least one random-init twin")
    if any(model_shape(t) != shape for t in twin_list):
        raise MesaInterpError("control: every random-init twin must have the model's shape")
    goal_pos, query_pos, decision_pos = declared_positions(task)
    seq_len = task.sample(1, seed=seed).seq_len
    if profile.kind == "path":
        positions = list(range(seq_len))
        declared = sorted({goal_pos, query_pos, decision_pos})
    else:
        positions = declared = [query_pos]
    starts = list(range(0, n_examples, batch_size))
    batches = [
        task.sample(min(batch_size, n_examples - s), seed=seed + i) for i, s in enumerate(starts)
    ]
    meta = {"task": task.config_dict(), "n_examples": n_examples, "seed": seed}

    def read(m: Any, where: list[int], who: str) -> ActivationDataset:
        bar = progress_bar(batches, desc=f"activations ({who})", progress=progress)
        return collect_activations(m, bar, probe_sites(shape, where), metadata=meta, progress=False)

    data = read(model, positions, "model")
    twin_data = tuple(read(t, declared, f"twin {i}") for i, t in enumerate(twin_list))
    return EvidenceInputs(
        model=model,
        twins=twin_list,
        task=task,
        profile=profile,
        query_pos=query_pos,
        goal_pos=goal_pos,
        decision_pos=decision_pos,
        n_layers=shape.n_layers,
        data=data,
        twin_data=twin_data,
        tokens=torch.cat([b.inputs for b in batches]),
    )
