"""Evidence inputs whose activations are written by hand, for tests of the statistics.

`synthetic_inputs(task, write)` samples real task examples and sets the
residual stream at the declared positions to `write(batch, pos, layer)` [n, d]
(with a little noise so probes are well posed); the random-init twins get noise.
A planted representation that lacks a property is then one line.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mesainterp.evidence.profile import EvidenceInputs, declared_positions, profile_for
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.sites import Site
from mesainterp.tasks.base import Task, TaskBatch

__all__ = ["one_hot", "synthetic_inputs"]


def one_hot(ids: Tensor, k: int) -> Tensor:
    out = torch.zeros(ids.shape[0], k)
    ok = ids >= 0
    out[ok, ids[ok].long()] = 1.0
    return out


def synthetic_inputs(
    task: Task,
    write: Callable[[TaskBatch, int, int], Tensor],
    *,
    n: int = 400,
    n_layers: int = 4,
    d: int = 48,
    seed: int = 0,
    n_twins: int = 5,
) -> EvidenceInputs:
    batch = task.sample(n, seed=seed)
    goal_pos, query_pos, decision_pos = declared_positions(task)
    positions = sorted({goal_pos, query_pos, decision_pos})
    sites = tuple(
        Site(kind="resid_post", layer=layer, pos=pos)
        for layer in range(n_layers)
        for pos in positions
    )
    gen = torch.Generator().manual_seed(seed + 99)

    def noise() -> Tensor:
        return 0.05 * torch.randn(n, d, generator=gen)

    feats = []
    for s in sites:
        x = write(batch, s.pos, s.layer)
        feats.append(torch.nn.functional.pad(x, (0, d - x.shape[1])) + noise())
    data = ActivationDataset(sites=sites, features=torch.stack(feats), labels=batch.labels)
    twins = tuple(
        ActivationDataset(
            sites=sites, features=torch.stack([noise() for _ in sites]), labels=batch.labels
        )
        for _ in range(n_twins)
    )
    return EvidenceInputs(
        model=None, twins=(None,) * n_twins, task=task, profile=profile_for(task),
        query_pos=query_pos, goal_pos=goal_pos, decision_pos=decision_pos, n_layers=n_layers,
        data=data, twin_data=twins, tokens=batch.inputs,
    )  # fmt: skip
