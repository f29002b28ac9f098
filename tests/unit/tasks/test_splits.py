"""Held-out splits: train and test never share an underlying problem."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.tasks import GraphSearchTask, MazeTask, TreePathTask


def _key(inst) -> tuple:
    if isinstance(inst.edges[0], tuple) and hasattr(inst, "origin"):
        edges = sorted((min(e), max(e)) for e in inst.edges)  # maze: undirected
        return (tuple(edges), inst.origin, inst.target)
    ends = (inst.start, inst.goal) if hasattr(inst, "start") else (inst.goal,)
    return (tuple(sorted(inst.edges)), *ends)


# Small spaces, so that without a split train and test would overlap heavily.
SMALL = [
    TreePathTask(n_nodes=4, max_depth=2),
    MazeTask(grid_n=2),
    GraphSearchTask(n_vertices=4, max_lookahead=1, extra_edges=0),
]


@pytest.mark.parametrize("task", SMALL, ids=lambda t: t.name)
def test_train_and_test_are_disjoint(task):
    train = dataclasses.replace(task, split="train", test_fraction=0.3)
    test = dataclasses.replace(task, split="test", test_fraction=0.3)
    train_keys = {_key(i) for i in train.sample(300, seed=1).instances}
    test_keys = {_key(i) for i in test.sample(300, seed=1).instances}
    pair_keys = {_key(i) for i in test.counterfactual_pairs(20, seed=2).clean.instances}
    all_keys = {_key(i) for i in task.sample(300, seed=1).instances}
    assert train_keys and test_keys
    assert not train_keys & test_keys
    assert not pair_keys & train_keys
    assert all_keys & train_keys and all_keys & test_keys


def test_split_share_and_shape():
    task = TreePathTask(split="test", test_fraction=0.2)
    batch = task.sample(50, seed=0)
    assert batch.inputs.shape == (50, task.seq_len)
    # Train keeps exactly the unrestricted stream minus the test share (about a fifth).
    full = TreePathTask().sample(1000, seed=3).instances
    train = TreePathTask(split="train", test_fraction=0.2).sample(800, seed=3).instances
    train_keys = {_key(j) for j in train}
    kept = [i for i in full if _key(i) in train_keys]
    assert kept == train[: len(kept)] and 0.7 < len(kept) / 1000 < 0.9


def test_all_is_unchanged():
    a = TreePathTask().sample(20, seed=4)
    b = TreePathTask(split="all", test_fraction=0.5).sample(20, seed=4)
    assert torch.equal(a.inputs, b.inputs)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"split": "val"}, "split"),
        ({"split": "test", "test_fraction": 0.0}, "test_fraction"),
        ({"split": "train", "test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
    ],
)
@pytest.mark.parametrize("cls", [TreePathTask, MazeTask, GraphSearchTask])
def test_bad_split_params(cls, params, field):
    with pytest.raises(ConfigError, match=field):
        cls(**params)
