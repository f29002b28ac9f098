"""Maze task: mazes from maze-dataset, labels against networkx and maze-dataset's solver."""

from __future__ import annotations

import os
import random

import networkx as nx
import numpy as np
import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.tasks import IGNORE_INDEX, MazeTask
from mesainterp.tasks.maze import MOVES

TASK = MazeTask()


def _graph(inst) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(inst.grid_n**2))
    g.add_edges_from(inst.edges)
    return g


def test_layout():
    assert TASK.grid_n == 4 and TASK.d_vocab == TASK.d_vocab_out == 22
    assert (TASK.prompt_len, TASK.seq_len) == (50, 67)
    batch = TASK.sample(16, seed=0)
    assert batch.inputs.shape == batch.targets.shape == (16, 67)
    assert (batch.inputs[:, 2 : 3 * TASK.n_edges : 3] == TASK.comma).all()
    assert (batch.inputs[:, TASK.origin_pos - 1] == TASK.origin_marker).all()
    assert (batch.inputs[:, TASK.target_pos - 1] == TASK.target_marker).all()
    assert (batch.inputs[:, TASK.prompt_len - 1] == TASK.path_marker).all()


def test_determinism_and_no_global_rng_leak():
    random.seed(123)
    np.random.seed(123)
    py_before, np_before = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    a = TASK.sample(8, seed=5)
    assert (random.random(), np.random.random()) == (py_before, np_before)
    b = TASK.sample(8, seed=5)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, TASK.sample(8, seed=6).inputs)


def test_nothing_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    TASK.sample(4, seed=0)
    TASK.counterfactual_pairs(4, seed=0)
    assert os.listdir(tmp_path) == []


def test_labels_match_independent_solvers():
    from maze_dataset import LatticeMaze

    n = TASK.grid_n
    batch = TASK.sample(60, seed=1)
    for b, inst in enumerate(batch.instances):
        g = _graph(inst)
        # A perfect maze: a spanning tree of the grid with lattice-neighbour edges only.
        assert nx.is_tree(g) and g.number_of_nodes() == n * n
        for x, y in inst.edges:
            assert abs(x // n - y // n) + abs(x % n - y % n) == 1
        path = nx.shortest_path(g, inst.origin, inst.target)
        assert list(inst.path) == path and inst.origin != inst.target
        # maze-dataset's own A* solver on its own maze representation.
        conn = np.zeros((2, n, n), dtype=bool)
        for x, y in inst.edges:
            lo, hi = min(x, y), max(x, y)
            conn[0 if hi - lo == n else 1, lo // n, lo % n] = True
        maze = LatticeMaze(connection_list=conn)
        astar = maze.find_shortest_path(divmod(inst.origin, n), divmod(inst.target, n))
        assert [int(r) * n + int(c) for r, c in astar] == path
        lab = {k: v[b] for k, v in batch.labels.items()}
        k = len(path)
        assert lab["origin"] == inst.origin and lab["target"] == inst.target
        assert lab["path_len"] == k
        assert lab["path"].tolist() == path + [-1] * (n * n - k)
        assert lab["current"].tolist() == lab["path"].tolist()
        for i in range(n * n):
            move = lab["next_move"][i].item()
            if i < k - 1:
                dr, dc = MOVES[move]
                assert path[i + 1] == (path[i] // n + dr) * n + path[i] % n + dc
            else:
                assert move == -1
        assert lab["on_path"].nonzero().flatten().tolist() == sorted(path)
        dist = nx.shortest_path_length(g, target=inst.target)
        assert lab["distance_to_target"].tolist() == [dist[v] for v in range(n * n)]
        assert torch.equal(
            lab["adjacency"], torch.from_numpy(nx.to_numpy_array(g, nodelist=range(n * n)) > 0)
        )
        row, tgt, p0 = batch.inputs[b].tolist(), batch.targets[b].tolist(), TASK.prompt_len
        assert [tuple(row[3 * e : 3 * e + 2]) for e in range(TASK.n_edges)] == list(inst.edges)
        assert row[TASK.origin_pos] == inst.origin and row[TASK.target_pos] == inst.target
        assert row[p0 : p0 + k + 1] == [*path, TASK.end]
        assert tgt[p0 - 1 : p0 + k] == [*path, TASK.end]
        assert sum(t != IGNORE_INDEX for t in tgt) == k + 1


def test_target_pairs():
    pair = TASK.counterfactual_pairs(40, seed=2, family="target")
    c, r, p0 = pair.clean, pair.corrupted, TASK.prompt_len
    diff = c.inputs[:, :p0] != r.inputs[:, :p0]
    assert (diff.sum(1) == 1).all() and diff[:, TASK.target_pos].all()
    for b in range(40):
        ci, ri = c.instances[b], r.instances[b]
        assert ci.edges == ri.edges and ci.origin == ri.origin
        assert ri.target not in ci.path and ci.target not in ri.path
        i = next(i for i, (x, y) in enumerate(zip(ci.path, ri.path, strict=False)) if x != y)
        pos = int(pair.answer_pos[b])
        assert pos == p0 - 1 + i
        assert pair.clean_answer[b] == ci.path[i] and pair.corrupted_answer[b] == ri.path[i]
        same = (c.inputs[b, : pos + 1] == r.inputs[b, : pos + 1]).tolist()
        assert [k for k, s in enumerate(same) if not s] == [TASK.target_pos]


def test_origin_pairs():
    pair = TASK.counterfactual_pairs(40, seed=3, family="origin")
    c, r, p0 = pair.clean, pair.corrupted, TASK.prompt_len
    diff = c.inputs[:, :p0] != r.inputs[:, :p0]
    assert (diff.sum(1) == 1).all() and diff[:, TASK.origin_pos].all()
    assert (pair.answer_pos == p0).all()
    for b in range(40):
        ci, ri = c.instances[b], r.instances[b]
        assert ci.edges == ri.edges and ci.target == ri.target and ci.origin != ri.origin
        assert pair.clean_answer[b] == ci.path[1] != ri.path[1] == pair.corrupted_answer[b]


def _perfect_logits(batch, vocab):
    out = torch.zeros(batch.batch_size, batch.seq_len, vocab)
    out.scatter_(2, batch.targets.clamp(min=0).unsqueeze(-1), 3.0)
    return out


@pytest.mark.parametrize("family", ["target", "origin"])
def test_metric_sign(family):
    pair = TASK.counterfactual_pairs(10, seed=4, family=family)
    metric = TASK.default_metric(pair)
    assert (metric(_perfect_logits(pair.clean, 22), pair.clean) == 3.0).all()
    assert (metric(_perfect_logits(pair.corrupted, 22), pair.corrupted) == -3.0).all()


def test_score():
    batch = TASK.sample(4, seed=5)
    out = _perfect_logits(batch, 22)
    assert TASK.score(out, batch)["exact_path"].all()
    last = int((batch.targets[2] != IGNORE_INDEX).nonzero().max())
    out[2, last] = out[2, last].flip(0)
    s = TASK.score(out, batch)
    assert s["exact_path"].tolist() == [True, True, False, True]
    assert s["token_acc"][2] < 1


@pytest.mark.parametrize("bad", [1, 9, 4.0, "4"])
def test_bad_grid_refused(bad):
    with pytest.raises(ConfigError, match="grid_n"):
        MazeTask(grid_n=bad)


@pytest.mark.parametrize("grid_n", [2, 3, 5])
def test_other_grid_sizes(grid_n):
    task = MazeTask(grid_n=grid_n)
    batch = task.sample(6, seed=grid_n)
    assert batch.inputs.shape == (6, 3 * (grid_n**2 - 1) + 5 + grid_n**2 + 1)
    for inst in batch.instances:
        g = _graph(inst)
        assert nx.is_tree(g)
        assert list(inst.path) == nx.shortest_path(g, inst.origin, inst.target)
    for family in task.counterfactual_families:
        pair = task.counterfactual_pairs(4, seed=0, family=family)
        assert (pair.clean_answer != pair.corrupted_answer).all()
