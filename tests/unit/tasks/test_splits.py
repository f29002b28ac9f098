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


def _maze_of(inst) -> tuple:
    return tuple(sorted((min(e), max(e)) for e in inst.edges))


def _training_stream(task: MazeTask, steps: int, batch: int = 64) -> list:
    """The batches the training loop draws for a run with seed 0 (online sampling)."""
    from mesainterp.training.evaluation import train_seed

    return [i for s in range(steps) for i in task.sample(batch, seed=train_seed(0, s)).instances]


def test_split_by_maze_holds_out_whole_mazes():
    # The DFS generator makes 88 distinct 3x3 mazes (of the grid's 192 spanning
    # trees): 2,560 training draws see every training maze, so an overlap would show.
    train = MazeTask(grid_n=3, split="train", split_by="maze")
    test = dataclasses.replace(train, split="test")
    seen = {_maze_of(i) for i in _training_stream(train, steps=40)}
    held = {_maze_of(i) for i in test.sample(400, seed=7).instances}
    held |= {_maze_of(i) for i in test.counterfactual_pairs(20, seed=8).corrupted.instances}
    assert len(seen) >= 70 and 5 <= len(held) <= 20 and len(seen | held) <= 88
    assert not seen & held
    assert all(test.split_key(i) == (list(m),) for i, m in zip(test.sample(3, seed=0).instances,
                                                               [_maze_of(j) for j in test.sample(3, seed=0).instances], strict=True))  # fmt: skip
    # The default split holds out (maze, origin, target) triples only: the same
    # training stream then shares mazes with the test split.
    by_problem = MazeTask(grid_n=3, split="train")
    seen_p = {_maze_of(i) for i in _training_stream(by_problem, steps=40)}
    held_p = {_maze_of(i) for i in dataclasses.replace(by_problem, split="test").sample(400, seed=7).instances}  # fmt: skip
    assert seen_p & held_p


def test_split_by_problem_is_unchanged_and_bad_split_by_is_refused():
    a = MazeTask(grid_n=3, split="test").sample(30, seed=5)
    b = MazeTask(grid_n=3, split="test", split_by="problem").sample(30, seed=5)
    assert torch.equal(a.inputs, b.inputs)
    with pytest.raises(ConfigError, match="split_by"):
        MazeTask(split_by="cell")  # type: ignore[arg-type]
