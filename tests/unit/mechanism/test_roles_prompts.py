"""Relations on a user's prompts, and the causal check on the planted-circuit oracle.

In `discovery.planted.planted_model` every query/key weight is zero, so all four
heads attend uniformly: no head gets a role (uniform attention is the chance level),
although L0H1 and L1H0 carry the answer. The ablation the causal check runs must
still single those two out: ablated at every position they flip the answer, and the
two heads that write nothing change it by exactly zero.
"""

from __future__ import annotations

import pytest
import torch

from mesainterp.discovery.planted import planted_model, planted_pair
from mesainterp.errors import ConfigError
from mesainterp.mechanism import (
    MIN_DROP,
    QueryRole,
    Relation,
    head_role_table,
    relation_masks,
    task_query_roles,
    task_relations,
)
from mesainterp.mechanism.ablate import HeadAblation, HeadAblator
from mesainterp.prompts import PromptPairs
from mesainterp.tasks import MazeTask, TreePathTask


def _oracle_pairs() -> PromptPairs:
    case = planted_pair(24)
    n, seq = case.clean.shape
    return PromptPairs.from_token_ids(
        case.clean.tolist(), case.corrupted.tolist(), case.clean[:, 0].tolist(),
        case.corrupted[:, 0].tolist(), roles={"first": [0] * n, "final": [seq - 1] * n},
        vocab_size=4,
    )  # fmt: skip


def test_uniform_attention_gets_no_role() -> None:
    table = head_role_table(planted_model(), _oracle_pairs(), n_boot=200)
    assert table.labels() == set()
    prefix_rows = [r for r in table.rows if r.relation == "prefix"]
    assert prefix_rows and all(r.mass > 0.99 and r.chance > 0.99 for r in prefix_rows)


@pytest.mark.parametrize("ablation", ["resample", "mean"])
def test_oracle_ablation_singles_out_the_planted_heads(ablation: HeadAblation) -> None:
    pairs = _oracle_pairs()
    pair = pairs.to_pair()
    metric = pairs.default_metric(pair)
    ablator = HeadAblator(planted_model(), pair.clean.inputs, ablation, pair.corrupted.inputs)
    everywhere = torch.ones_like(pair.clean.inputs, dtype=torch.bool)
    clean = metric(ablator.logits, pair.clean)
    drops = {}
    for layer in (0, 1):
        for head in (0, 1):
            ablated = metric(ablator.logits_without(layer, head, everywhere), pair.clean)
            drops[f"L{layer}H{head}"] = float((clean - ablated).mean())
    assert drops["L0H0"] == drops["L1H1"] == 0.0
    assert drops["L0H1"] > MIN_DROP and drops["L1H0"] > MIN_DROP


def test_prompt_roles_become_relations_and_query_roles() -> None:
    table = head_role_table(planted_model(), _oracle_pairs(), n_boot=50)
    assert {"role first", "role final", "previous token", "prefix"} <= set(
        table.settings["relations"]
    )
    assert {"first", "final", "last", "every position"} <= set(table.settings["query_roles"])
    # At query "first" (position 0) the only visible key is position 0 itself.
    rows = [r for r in table.rows if r.query_role == "first"]
    assert rows and all(r.relation.startswith("self") for r in rows)


def test_tree_relations_name_the_labelled_positions() -> None:
    task = TreePathTask()
    batch = task.sample(8, seed=0)
    names = [r.name for r in task_relations(task)]
    goal_role = next(r for r in task_query_roles(task) if r.name == "goal")
    masks = relation_masks(batch, goal_role, task_relations(task))
    into_goal = masks.keys[names.index("edge into goal ancestor 0")]
    parent = masks.keys[names.index("edge into goal ancestor 1")]
    for b in range(8):
        e = int(batch.labels["edge_pos"][b, batch.labels["goal"][b]])
        assert into_goal[b, task.goal_pos].nonzero().flatten().tolist() == [e, e + 1, e + 2]
        grand = int(batch.labels["ancestors"][b, 0])
        has_parent = int(batch.labels["depth"][b]) >= 2
        assert bool(parent[b, task.goal_pos].any()) == has_parent
        if has_parent:
            e = int(batch.labels["edge_pos"][b, grand])
            assert parent[b, task.goal_pos].nonzero().flatten().tolist() == [e, e + 1, e + 2]


def test_maze_relations_cover_the_next_connection_once() -> None:
    task = MazeTask(grid_n=3)
    batch = task.sample(8, seed=0)
    relations = task_relations(task)
    names = [r.name for r in relations]
    answer = next(r for r in task_query_roles(task, steps=1) if r.name == "answer 1")
    masks = relation_masks(batch, answer, relations)
    first = masks.defined[names.index("connection to next (current first)")]
    second = masks.defined[names.index("connection to next (current second)")]
    # Every answer-1 query has its next connection listed one way or the other, not both.
    assert torch.equal(first | second, masks.query) and not bool((first & second).any())


def test_user_relations_and_bad_positions() -> None:
    task = TreePathTask()
    batch = task.sample(2, seed=0)
    first_edge = Relation("first edge", lambda batch, b, q: [0, 1, 2])
    at_colon = QueryRole(":", lambda batch, b: [task.prompt_len - 1])
    masks = relation_masks(batch, at_colon, [first_edge])
    assert masks.keys[0, :, task.prompt_len - 1].sum().item() == 6
    beyond = QueryRole("beyond", lambda batch, b: [batch.seq_len])
    with pytest.raises(ConfigError, match="beyond"):
        relation_masks(batch, beyond, [first_edge])
    with pytest.raises(ConfigError, match="name"):
        Relation("", lambda batch, b, q: [])
    with pytest.raises(ConfigError, match="source"):
        head_role_table(planted_model(), object())
