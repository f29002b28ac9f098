"""Tree-path task: every label against networkx, layout, pairs, metric, score."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mesainterp.errors import ConfigError
from mesainterp.tasks import IGNORE_INDEX, TreePathTask

TASK = TreePathTask()


def _graph(inst) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_edges_from(inst.edges)
    return g


def test_defaults_and_layout():
    assert (TASK.n_nodes, TASK.max_depth, TASK.max_children) == (12, 5, 2)
    assert TASK.d_vocab == TASK.d_vocab_out == 17
    assert TASK.prompt_len == 36
    assert TASK.seq_len == 43
    batch = TASK.sample(64, seed=0)
    assert batch.inputs.shape == batch.targets.shape == (64, 43)
    assert batch.inputs.dtype == torch.long
    assert batch.prompt_len == 36
    assert (batch.inputs[:, 2 : 3 * TASK.n_edges : 3] == TASK.comma).all()
    assert (batch.inputs[:, TASK.goal_pos - 1] == TASK.goal_marker).all()
    assert (batch.inputs[:, TASK.goal_pos + 1] == TASK.path_marker).all()
    assert batch.inputs.max() < TASK.d_vocab
    assert (batch.targets[:, : TASK.prompt_len - 1] == IGNORE_INDEX).all()


def test_determinism():
    a, b = TASK.sample(32, seed=7), TASK.sample(32, seed=7)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    for k in a.labels:
        assert torch.equal(a.labels[k], b.labels[k])
    assert not torch.equal(a.inputs, TASK.sample(32, seed=8).inputs)
    p, q = TASK.counterfactual_pairs(16, seed=3), TASK.counterfactual_pairs(16, seed=3)
    assert torch.equal(p.corrupted.inputs, q.corrupted.inputs)
    assert torch.equal(p.answer_pos, q.answer_pos)


@pytest.mark.parametrize(
    "task",
    [TASK, TreePathTask(goal_depth="uniform_node"), TreePathTask(n_nodes=9, max_children=None)],
)
def test_labels_match_networkx(task):
    batch = task.sample(100, seed=1)
    for b, inst in enumerate(batch.instances):
        g = _graph(inst)
        assert nx.is_arborescence(g) and g.number_of_nodes() == task.n_nodes
        root = next(v for v in g if g.in_degree(v) == 0)
        path = nx.shortest_path(g, root, inst.goal)
        depth = len(path) - 1
        assert task.min_goal_depth <= depth <= task.max_depth
        assert max(nx.shortest_path_length(g, root).values()) <= task.max_depth
        if task.max_children is not None:
            assert max(d for _, d in g.out_degree()) <= task.max_children
        labels = {k: v[b].tolist() for k, v in batch.labels.items()}
        assert labels["root"] == root and labels["goal"] == inst.goal
        assert labels["depth"] == depth
        assert labels["path"] == path + [-1] * (task.max_depth + 1 - len(path))
        anc = path[-2::-1]
        assert labels["ancestors"] == anc + [-1] * (task.max_depth - len(anc))
        assert set(nx.ancestors(g, inst.goal)) == set(anc)
        for v in range(task.n_nodes):
            preds = list(g.predecessors(v))
            assert labels["parent"][v] == (preds[0] if preds else -1)
            assert labels["node_depth"][v] == nx.shortest_path_length(g, root, v)
            assert labels["on_path"][v] == (v in path)
            e = labels["edge_pos"][v]
            assert (
                (e == -1) if v == root else (batch.inputs[b, e : e + 2].tolist() == [preds[0], v])
            )
        # The prompt encodes exactly these edges, the answer is path + END.
        row = batch.inputs[b].tolist()
        assert [tuple(row[3 * e : 3 * e + 2]) for e in range(task.n_edges)] == list(inst.edges)
        assert row[task.goal_pos] == inst.goal
        p0 = task.prompt_len
        assert row[p0 : p0 + len(path) + 1] == [*path, task.end]
        assert all(t == task.pad for t in row[p0 + len(path) + 1 :])
        tgt = batch.targets[b].tolist()
        assert tgt[p0 - 1 : p0 + len(path)] == [*path, task.end]
        assert sum(t != IGNORE_INDEX for t in tgt) == len(path) + 1


def test_goal_depth_is_uniform_and_reaches_four():
    depths = TASK.sample(1000, seed=2).labels["depth"]
    counts = torch.bincount(depths, minlength=6)[1:]
    assert counts.min() > 150  # 200 expected per depth 1..5
    assert (depths >= 4).float().mean() > 0.3


def test_counterfactual_pairs_change_only_the_goal():
    pair = TASK.counterfactual_pairs(100, seed=4)
    c, r = pair.clean, pair.corrupted
    assert c.inputs.shape == r.inputs.shape and c.prompt_len == r.prompt_len
    p0 = TASK.prompt_len
    diff = c.inputs[:, :p0] != r.inputs[:, :p0]
    assert (diff.sum(dim=1) == 1).all() and diff[:, TASK.goal_pos].all()
    for b in range(100):
        ci, ri = c.instances[b], r.instances[b]
        assert ci.edges == ri.edges and ci.root == ri.root
        g = _graph(ci)
        # Neither goal is an ancestor of the other, so the paths really diverge.
        assert ri.goal not in nx.ancestors(g, ci.goal) | nx.descendants(g, ci.goal)
        i = next(i for i, (x, y) in enumerate(zip(ci.path, ri.path, strict=False)) if x != y)
        pos = int(pair.answer_pos[b])
        assert pos == p0 - 1 + i
        assert c.targets[b, pos] == pair.clean_answer[b] == ci.path[i]
        assert r.targets[b, pos] == pair.corrupted_answer[b] == ri.path[i]
        # Inputs agree up to and including the answer position, except the goal token.
        same = (c.inputs[b, : pos + 1] == r.inputs[b, : pos + 1]).tolist()
        assert [k for k, s in enumerate(same) if not s] == [TASK.goal_pos]


def _perfect_logits(batch, vocab):
    out = torch.zeros(batch.batch_size, batch.seq_len, vocab)
    tgt = batch.targets.clamp(min=0)
    out.scatter_(2, tgt.unsqueeze(-1), 5.0)
    return out


def test_metric_sign():
    pair = TASK.counterfactual_pairs(20, seed=5)
    metric = TASK.default_metric(pair)
    clean = metric(_perfect_logits(pair.clean, TASK.d_vocab), pair.clean)
    corrupt = metric(_perfect_logits(pair.corrupted, TASK.d_vocab), pair.corrupted)
    assert (clean == 5.0).all() and (corrupt == -5.0).all()
    with pytest.raises(ConfigError, match="outputs"):
        metric(torch.zeros(3, TASK.seq_len, TASK.d_vocab), pair.clean)


def test_score_on_hand_made_outputs():
    batch = TASK.sample(6, seed=6)
    out = _perfect_logits(batch, TASK.d_vocab)
    s = TASK.score(out, batch)
    assert s["exact_path"].all() and (s["token_acc"] == 1).all()
    # Break one supervised position of example 0 and one unsupervised one of example 1.
    p0 = TASK.prompt_len
    n_sup = int((batch.targets[0] != IGNORE_INDEX).sum())
    out[0, p0, :] = 0
    out[0, p0, (batch.targets[0, p0] + 1) % TASK.d_vocab] = 9.0
    out[1, 0, 3] = 99.0
    s = TASK.score(out, batch)
    assert s["exact_path"].tolist() == [False, True, True, True, True, True]
    assert s["token_acc"][0].item() == pytest.approx((n_sup - 1) / n_sup)
    assert s["token_acc"][1].item() == 1.0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"n_nodes": 1}, "n_nodes"),
        ({"max_depth": 0}, "max_depth"),
        ({"max_depth": 12}, "max_depth"),
        ({"max_children": 0}, "max_children"),
        ({"n_nodes": 40, "max_depth": 3}, "n_nodes"),
        ({"min_goal_depth": 6}, "min_goal_depth"),
        ({"goal_depth": "deep"}, "goal_depth"),
        ({"n_nodes": 12.0}, "n_nodes"),
    ],
)
def test_bad_params_name_the_field(params, field):
    with pytest.raises(ConfigError, match=field):
        TreePathTask(**params)


def test_bad_n_and_seed_refused():
    with pytest.raises(ConfigError, match="seed"):
        TASK.sample(2, seed=-1)
    with pytest.raises(ConfigError, match=r"\bn\b"):
        TASK.counterfactual_pairs(0, seed=0)


def test_unknown_family_refused():
    with pytest.raises(ConfigError, match="goal"):
        TASK.counterfactual_pairs(2, seed=0, family="root")


@settings(max_examples=25, deadline=None)
@given(
    n_nodes=st.integers(2, 16),
    depth_frac=st.floats(0, 1),
    max_children=st.one_of(st.none(), st.integers(1, 4)),
    goal_depth=st.sampled_from(["uniform_depth", "uniform_node"]),
    seed=st.integers(0, 2**31),
)
def test_any_valid_config_gives_correct_labels(n_nodes, depth_frac, max_children, goal_depth, seed):
    max_depth = 1 + int(depth_frac * (n_nodes - 2))
    try:
        task = TreePathTask(
            n_nodes=n_nodes, max_depth=max_depth, max_children=max_children, goal_depth=goal_depth
        )
    except ConfigError:
        return  # e.g. too many nodes for the depth and fan-out
    batch = task.sample(5, seed=seed)
    assert batch.inputs.shape == (5, task.seq_len)
    for b, inst in enumerate(batch.instances):
        g = _graph(inst)
        assert nx.is_arborescence(g) and g.number_of_nodes() == n_nodes
        root = next(v for v in g if g.in_degree(v) == 0)
        assert list(inst.path) == nx.shortest_path(g, root, inst.goal)
        assert batch.labels["depth"][b] == len(inst.path) - 1 <= max_depth
        assert max(nx.shortest_path_length(g, root).values()) <= max_depth


def test_chain_trees_cannot_make_goal_pairs():
    with pytest.raises(ConfigError, match="max_children"):
        TreePathTask(n_nodes=4, max_depth=3, max_children=1).counterfactual_pairs(1, seed=0)


@pytest.mark.parametrize("task", [TASK, TreePathTask(n_nodes=7, max_depth=3, max_children=None)])
def test_rewire_pairs_change_one_edge_and_the_path_not_the_goal(task):
    pair = task.counterfactual_pairs(100, seed=6, family="rewire")
    c, r = pair.clean, pair.corrupted
    p0 = task.prompt_len
    diff = c.inputs[:, :p0] != r.inputs[:, :p0]
    # One token: the parent of one edge (positions 3e), never the goal or a child.
    assert (diff.sum(dim=1) == 1).all()
    assert (diff.nonzero()[:, 1] % 3 == 0).all() and (diff.nonzero()[:, 1] < p0 - 3).all()
    n_changed = 0
    for b in range(100):
        ci, ri = c.instances[b], r.instances[b]
        assert ci.goal == ri.goal and ci.root == ri.root
        g = _graph(ri)
        # Still a tree within the limits; the path is the corrupted tree's own.
        assert nx.is_arborescence(g) and g.number_of_nodes() == task.n_nodes
        assert list(ri.path) == nx.shortest_path(g, ri.root, ri.goal)
        assert len(ri.path) - 1 <= task.max_depth
        assert max(nx.shortest_path_length(g, ri.root).values()) <= task.max_depth
        if task.max_children is not None:
            assert max(d for _, d in g.out_degree()) <= task.max_children
        # Exactly one edge moved, and it was one into a node on the clean path.
        moved = set(ci.edges) ^ set(ri.edges)
        assert len(moved) == 2 and {e[1] for e in moved} <= set(ci.path)
        assert ci.path != ri.path
        i = next(i for i, (x, y) in enumerate(zip(ci.path, ri.path, strict=False)) if x != y)
        pos = int(pair.answer_pos[b])
        assert pos == p0 - 1 + i
        assert pair.clean_answer[b] == ci.path[i] != ri.path[i] == pair.corrupted_answer[b]
        n_changed += len(ci.path) != len(ri.path)
    assert n_changed > 0  # depth-changing moves occur, not only same-depth swaps


def test_rewire_is_refused_where_no_node_can_move():
    # A star of depth 1: any other parent would put the goal at depth 2.
    with pytest.raises(ConfigError, match="max_depth"):
        TreePathTask(n_nodes=3, max_depth=1).counterfactual_pairs(1, seed=0, family="rewire")
