"""Relations on a user's prompts, and the causal check on the planted-circuit oracle.

In `discovery.planted.planted_model` every query/key weight is zero, so all four
heads attend uniformly: attention alone labels every head "prefix". Only L0H1 and
L1H0 carry the answer (the others write nothing), so the ablation check must keep
exactly those two: the failing case for a finder that trusts attention alone.
"""

from __future__ import annotations

import pytest
import torch

from mesainterp.discovery.planted import planted_model, planted_pair
from mesainterp.errors import ConfigError
from mesainterp.mechanism import (
    QueryRole,
    Relation,
    head_role_table,
    relation_masks,
    task_query_roles,
    task_relations,
)
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


@pytest.mark.parametrize("ablation", ["resample", "mean"])
def test_oracle_causal_check_keeps_exactly_the_planted_heads(ablation: str) -> None:
    table = head_role_table(planted_model(), _oracle_pairs(), ablation=ablation, n_boot=200)
    every = {
        (r.head_name, r.relation) for r in table.assigned() if r.query_role == "every position"
    }
    assert every == {(f"L{layer}H{head}", "prefix") for layer in (0, 1) for head in (0, 1)}
    supported = table.labels(supported=True)
    assert {head for head, _, _ in supported} == {"L0H1", "L1H0"}
    assert {("L0H1", "every position", "prefix"), ("L1H0", "every position", "prefix")} <= supported
    # L1H0 writes the logits at the last position only, so that is where it matters.
    assert ("L1H0", "final", "prefix") in supported


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
