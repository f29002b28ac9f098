"""Structural probes: hand-checked labels, the staircase on the planted backward-chaining
model and its absence on a random-init model, and the batched probes against oracles."""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import Ridge

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.planted_registry import planted_model
from mesainterp.evidence.scorecard import twin_controls
from mesainterp.mechanism.staircase_rule import staircase
from mesainterp.mechanism.structural import (
    _cv_multilabel,
    _scores,
    position_names,
    structural_labels,
    structural_probes,
)
from mesainterp.model.build import random_init_twin
from mesainterp.probes.cv import kfold_indices
from mesainterp.stats import bootstrap_mean
from mesainterp.tasks import GraphSearchTask, MazeTask, TreePathTask
from mesainterp.tasks.tree_path import TreeInstance

# Tree: 2 -> 0 -> 3 and 2 -> 1; the goal is 3, so the path is 2 0 3.
TINY = TreePathTask(n_nodes=4, max_depth=2)
TINY_TREE = TreeInstance(edges=((2, 0), (0, 3), (2, 1)), root=2, goal=3, path=(2, 0, 3))
CHAIN = TreePathTask(n_nodes=8, max_depth=4)
RANKS = ["ancestor 1", "ancestor 2", "ancestor 3"]


def test_tree_labels_match_a_hand_computed_tiny_tree() -> None:
    batch = TINY._batch([TINY_TREE])
    q = structural_labels(TINY, batch, ranks=2)
    p0 = TINY.prompt_len  # 12; answer positions 12, 13, 14 hold 2, 0, 3
    assert p0 == 12 and batch.inputs[0, p0 : p0 + 3].tolist() == [2, 0, 3]
    # Ancestor 1 of the goal is 0 everywhere; ancestor 2 is the root: a free label, left out.
    assert q["ancestor 1"].values[0].unique().tolist() == [0]
    assert not q["ancestor 2"].defined.any()
    assert q["current node"].values[0, p0 : p0 + 4].tolist() == [2, 0, 3, -1]
    assert q["current node"].free and q["parent"].free
    assert q["parent"].values[0, p0 : p0 + 3].tolist() == [-1, 2, 0]
    kids = q["children"].values[0]
    assert kids[p0].tolist() == [1, 1, 0, 0]  # the root 2 has children 0 and 1
    assert kids[p0 + 1].tolist() == [0, 0, 0, 1]
    assert kids[p0 + 2].tolist() == [0, 0, 0, 0]  # the goal is a leaf
    assert q["children"].defined[0].nonzero().flatten().tolist() == [12, 13, 14]
    assert q["on path"].values[0, 5].tolist() == [1, 0, 1, 1]
    dist = q["distance to goal"]
    assert dist.values[0, :p0].unique().tolist() == [2.0]  # before the answer: the whole path
    assert dist.values[0, p0 : p0 + 3].tolist() == [2.0, 1.0, 0.0]
    assert not dist.defined[0, p0 + 3 :].any()
    assert not q["ancestor 1"].free and q["ancestor 1"].rank == 1


def test_graph_and_maze_labels_follow_their_paths() -> None:
    task = GraphSearchTask()
    batch = task.sample(8, seed=3)
    q = structural_labels(task, batch, ranks=2)
    path, p0 = batch.labels["path"], batch.prompt_len
    for b in range(8):
        length = int((path[b] >= 0).sum())
        for j in range(length):
            assert int(q["current node"].values[b, p0 + j]) == int(path[b, j])
            assert float(q["distance to goal"].values[b, p0 + j]) == length - 1 - j
        if length >= 3:  # node 1 back is path[-2] unless that is the start
            assert int(q["node 1 back"].values[b, 0]) == int(path[b, length - 2])
    goal = batch.labels["goal"]
    assert not q["ancestors of goal"].values[torch.arange(8), 0, goal].any()
    maze = MazeTask()
    mb = maze.sample(4, seed=1)
    mq = structural_labels(maze, mb)
    assert list(mq) == ["current cell", "on path", "distance to target"]
    steps = int(mb.labels["path_len"][0])
    assert mq["distance to target"].values[0, mb.prompt_len + steps - 1] == 0


def test_position_names_give_roles_and_tokens() -> None:
    batch = TINY._batch([TINY_TREE])
    names = position_names(TINY, batch)
    assert names[:3] == ["edge 0 parent", "edge 0 child", ","]
    assert names[TINY.goal_pos] == "goal" and names[TINY.prompt_len - 1] == "answer step 0"


def _chain_table(model, twins):
    positions = [CHAIN.goal_pos, CHAIN.prompt_len - 1]
    return structural_probes(model, CHAIN, twins=twins, n_examples=200, ranks=3,
                             positions=positions, quantities=RANKS, n_boot=100, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def planted():
    pm = planted_model(CHAIN)
    return pm, twin_controls(pm.config, n=5)


def test_planted_chain_shows_the_staircase(planted) -> None:
    """The planted model climbs one level per layer from ":" (layer 0 copies the goal,
    block k moves the pointer to the k-th ancestor): rank k clears first at layer k."""
    pm, twins = planted
    table = _chain_table(pm.model, twins)
    steps = staircase(table)
    colon = CHAIN.prompt_len - 1
    assert steps.first_layers(colon) == [1, 2, 3]
    assert steps.is_staircase(colon)
    frame = table.to_frame()
    assert set(frame["role"]) == {"goal", "answer step 0"}
    assert (
        frame["best_control"].str.startswith("random-init")
        | (frame["best_control"] == "shuffled labels")
    ).all()
    top = frame[(frame["pos"] == colon) & (frame["layer"] == frame["rank"])]
    assert (top["value"] == 1.0).all() and (top["ci_low"] > top["control_high"]).all()
    assert table.to_dict()["rows"][0].keys() == frame.columns.to_series().pipe(set)


def test_random_init_model_shows_no_staircase(planted) -> None:
    """The failing case: a random-init model of the same architecture, judged against
    the same five twins, has no position where the chain climbs."""
    pm, twins = planted
    model = random_init_twin(pm.config, seed=pm.config.seed + 40)
    steps = staircase(_chain_table(model, twins))
    assert steps.staircase_positions == []
    assert not steps.is_staircase(CHAIN.prompt_len - 1)


def test_batched_multilabel_probe_matches_sklearn_ridge() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 60, 5, generator=gen)
    y = (torch.randn(60, 3, generator=gen) > 0).double()
    pred = _cv_multilabel(x, y, folds=3, seed=0)
    for s in range(2):
        for train, test in kfold_indices(60, k=3, seed=0):
            xt = x[s, train].double()
            mu, sd = xt.mean(0), xt.std(0, unbiased=False)
            ref = Ridge(alpha=1.0).fit(((xt - mu) / sd).numpy(), y[train].numpy())
            want = ref.predict(((x[s, test].double() - mu) / sd).numpy()) > 0.5
            assert torch.equal(pred[s, test], torch.from_numpy(want))


def test_bootstrap_interval_matches_stats_bootstrap_mean() -> None:
    outcome = (torch.rand(1, 80, generator=torch.Generator().manual_seed(1)) > 0.3).double()
    got = _scores("class", outcome, torch.zeros(80, dtype=torch.long), n_boot=300, seed=4)
    low, high = bootstrap_mean(outcome[0], n_boot=300, seed=4)
    assert got[0, 1].item() == pytest.approx(low) and got[0, 2].item() == pytest.approx(high)


def test_bad_input_is_refused_by_name(planted) -> None:
    pm, twins = planted
    with pytest.raises(MesaInterpError, match="quantities"):
        structural_probes(pm.model, CHAIN, twins=twins, quantities=["grandchild"])
    with pytest.raises(MesaInterpError, match="positions"):
        structural_probes(pm.model, CHAIN, twins=twins, positions=[999])
    with pytest.raises(MesaInterpError, match="twins"):
        structural_probes(pm.model, CHAIN, twins=[])
    with pytest.raises(MesaInterpError, match="ranks"):
        structural_labels(CHAIN, CHAIN.sample(2, seed=0), ranks=0)
