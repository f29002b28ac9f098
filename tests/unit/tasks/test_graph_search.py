"""Graph-search task: DAG labels against networkx, balanced lookahead, goal pairs."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mesainterp.errors import ConfigError
from mesainterp.tasks import IGNORE_INDEX, GraphSearchTask

TASK = GraphSearchTask()


def _graph(inst) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(inst.n_vertices))
    g.add_edges_from(inst.edges)
    return g


def test_layout_and_padding():
    assert TASK.d_vocab == TASK.d_vocab_out == 22
    assert (TASK.max_edges, TASK.prompt_len, TASK.seq_len) == (19, 62, 69)
    batch = TASK.sample(32, seed=0)
    assert batch.inputs.shape == batch.targets.shape == (32, 69)
    assert (batch.inputs[:, 2 : 3 * TASK.max_edges : 3] == TASK.comma).all()
    assert (batch.inputs[:, TASK.start_pos - 1] == TASK.start_marker).all()
    assert (batch.inputs[:, TASK.goal_pos - 1] == TASK.goal_marker).all()
    for b, inst in enumerate(batch.instances):
        row = batch.inputs[b].tolist()
        slots = [tuple(row[3 * e : 3 * e + 2]) for e in range(TASK.max_edges)]
        real = [s for s in slots if s != (TASK.pad, TASK.pad)]
        assert real == list(inst.edges)
        assert all(TASK.pad not in s for s in real)
        assert len(slots) - len(real) == TASK.max_edges - len(inst.edges)


def test_determinism():
    a, b = TASK.sample(16, seed=3), TASK.sample(16, seed=3)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, TASK.sample(16, seed=4).inputs)


@pytest.mark.parametrize(
    "task", [TASK, GraphSearchTask(n_vertices=12, max_lookahead=3, n_branches=3, extra_edges=8)]
)
def test_labels_match_networkx(task):
    batch = task.sample(80, seed=1)
    for b, inst in enumerate(batch.instances):
        g = _graph(inst)
        assert nx.is_directed_acyclic_graph(g)
        paths = list(nx.all_simple_paths(g, inst.start, inst.goal))
        assert paths == [list(inst.path)]  # exactly one path
        lab = {k: v[b].tolist() for k, v in batch.labels.items()}
        k = len(inst.path)
        assert lab["start"] == inst.start and lab["goal"] == inst.goal
        assert lab["lookahead"] == k - 1 and 1 <= k - 1 <= task.max_lookahead
        assert lab["path"] == [*inst.path] + [-1] * (task.max_lookahead + 2 - k - 1)
        reach = nx.descendants(g, inst.start) | {inst.start}
        assert [v for v in range(task.n_vertices) if lab["reachable"][v]] == sorted(reach)
        to_goal = nx.shortest_path_length(g, target=inst.goal)
        from_start = nx.shortest_path_length(g, source=inst.start)
        for v in range(task.n_vertices):
            assert lab["distance_to_goal"][v] == to_goal.get(v, -1)
            assert lab["distance_from_start"][v] == from_start.get(v, -1)
            assert lab["on_path"][v] == (v in inst.path)
        # Balanced: the start has n_branches (or more) out-edges, a distractor as long as the path.
        assert g.out_degree(inst.start) >= task.n_branches
        row, tgt, p0 = batch.inputs[b].tolist(), batch.targets[b].tolist(), task.prompt_len
        assert row[task.start_pos] == inst.start and row[task.goal_pos] == inst.goal
        assert row[p0 : p0 + k + 1] == [*inst.path, task.end]
        assert tgt[p0 - 1 : p0 + k] == [*inst.path, task.end]
        assert sum(t != IGNORE_INDEX for t in tgt) == k + 1


def test_lookahead_is_uniform():
    counts = torch.bincount(TASK.sample(1000, seed=2).labels["lookahead"], minlength=6)[1:]
    assert counts.min() > 150


def test_goal_pairs():
    pair = TASK.counterfactual_pairs(60, seed=5)
    c, r, p0 = pair.clean, pair.corrupted, TASK.prompt_len
    diff = c.inputs[:, :p0] != r.inputs[:, :p0]
    assert (diff.sum(1) == 1).all() and diff[:, TASK.goal_pos].all()
    for b in range(60):
        ci, ri = c.instances[b], r.instances[b]
        assert ci.edges == ri.edges and ci.start == ri.start
        g = _graph(ci)
        assert list(nx.all_simple_paths(g, ri.start, ri.goal)) == [list(ri.path)]
        assert ri.goal not in ci.path and ci.goal not in ri.path
        i = next(i for i, (x, y) in enumerate(zip(ci.path, ri.path, strict=False)) if x != y)
        pos = int(pair.answer_pos[b])
        assert pos == p0 - 1 + i
        assert pair.clean_answer[b] == ci.path[i] and pair.corrupted_answer[b] == ri.path[i]
        same = (c.inputs[b, : pos + 1] == r.inputs[b, : pos + 1]).tolist()
        assert [k for k, s in enumerate(same) if not s] == [TASK.goal_pos]


def test_metric_and_score():
    pair = TASK.counterfactual_pairs(10, seed=6)
    for half, sign in ((pair.clean, 1.0), (pair.corrupted, -1.0)):
        out = torch.zeros(10, TASK.seq_len, TASK.d_vocab)
        out.scatter_(2, half.targets.clamp(min=0).unsqueeze(-1), 2.0)
        assert (TASK.default_metric(pair)(out, half) == 2.0 * sign).all()
        s = TASK.score(out, half)
        assert s["exact_path"].all() and (s["token_acc"] == 1).all()
    out[3, pair.answer_pos[3]] = 0.0
    out[3, pair.answer_pos[3], TASK.end] = 1.0
    assert TASK.score(out, pair.corrupted)["exact_path"].tolist() == [k != 3 for k in range(10)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"n_vertices": 2}, "n_vertices"),
        ({"max_lookahead": 0}, "max_lookahead"),
        ({"n_branches": 1}, "n_branches"),
        ({"extra_edges": -1}, "extra_edges"),
        ({"n_vertices": 8, "max_lookahead": 5}, "n_vertices"),
    ],
)
def test_bad_params_name_the_field(params, field):
    with pytest.raises(ConfigError, match=field):
        GraphSearchTask(**params)


@settings(max_examples=20, deadline=None)
@given(
    n_vertices=st.integers(3, 20),
    max_lookahead=st.integers(1, 6),
    n_branches=st.integers(2, 4),
    extra_edges=st.integers(0, 12),
    seed=st.integers(0, 2**31),
)
def test_any_valid_config_has_a_unique_path(
    n_vertices, max_lookahead, n_branches, extra_edges, seed
):
    try:
        task = GraphSearchTask(
            n_vertices=n_vertices,
            max_lookahead=max_lookahead,
            n_branches=n_branches,
            extra_edges=extra_edges,
        )
    except ConfigError:
        return
    pair = task.counterfactual_pairs(3, seed=seed)
    for half in (pair.clean, pair.corrupted):
        assert half.inputs.shape == (3, task.seq_len)
        for inst in half.instances:
            g = _graph(inst)
            assert nx.is_directed_acyclic_graph(g) and len(inst.edges) <= task.max_edges
            assert list(nx.all_simple_paths(g, inst.start, inst.goal)) == [list(inst.path)]


@pytest.mark.parametrize(
    "task", [TASK, GraphSearchTask(n_vertices=8, max_lookahead=3, extra_edges=2)]
)
def test_rewire_pairs_move_the_goal_edge_and_change_the_path(task):
    pair = task.counterfactual_pairs(60, seed=7, family="rewire")
    c, r, p0 = pair.clean, pair.corrupted, task.prompt_len
    diff = c.inputs[:, :p0] != r.inputs[:, :p0]
    # One token, the tail of an edge (positions 3e), never the start or goal tokens.
    assert (diff.sum(1) == 1).all()
    cols = diff.nonzero()[:, 1]
    assert (cols % 3 == 0).all() and (cols < p0 - 5).all()
    same_lookahead = 0
    for b in range(60):
        ci, ri = c.instances[b], r.instances[b]
        assert ci.start == ri.start and ci.goal == ri.goal
        moved = set(ci.edges) ^ set(ri.edges)
        assert len(moved) == 2 and all(e[1] == ci.goal for e in moved)
        g = _graph(ri)
        assert nx.is_directed_acyclic_graph(g)
        # The corrupted path is the corrupted graph's only one, and a new one.
        assert list(nx.all_simple_paths(g, ri.start, ri.goal)) == [list(ri.path)]
        assert ci.path != ri.path and len(ri.path) - 1 <= task.max_lookahead
        i = next(i for i, (x, y) in enumerate(zip(ci.path, ri.path, strict=False)) if x != y)
        pos = int(pair.answer_pos[b])
        assert pos == p0 - 1 + i
        assert pair.clean_answer[b] == ci.path[i] != ri.path[i] == pair.corrupted_answer[b]
        same_lookahead += len(ci.path) == len(ri.path)
    # Lookahead 1 cannot be kept (the only level-0 vertex is the start); most others are.
    assert same_lookahead >= 20


def test_rewire_is_refused_without_room():
    # Lookahead 1: any other route to the goal is longer than max_lookahead.
    task = GraphSearchTask(n_vertices=3, max_lookahead=1, extra_edges=0)
    with pytest.raises(ConfigError, match="max_lookahead"):
        task.counterfactual_pairs(1, seed=0, family="rewire")
