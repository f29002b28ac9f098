"""Ground truth for the role finder: hand-built models whose heads' relations are known.

Planted tree-path chainer (`evidence.planted.planted_chain_model`): L0H0 reads the
previous token into the edge's child token; L0H1 copies the goal to ":" and the
answer positions; L{l}H0 (l = 1..max_depth) climbs from the goal's (l-1)-th ancestor
through the edge into it; the last layer's H0 follows the edge from the current node
onto the path and H1 reads the pointer at ":". Every one of those must be labelled
with its relation and pass its ablation check; heads that attend to the "|" sink,
whose value is zero, must fail the ablation check. The seeded random-init twin must
get no label at all: that is the failing case.
"""

from __future__ import annotations

import pytest

from mesainterp.evidence.planted_registry import planted_model
from mesainterp.mechanism import MAX_CHANCE, MIN_DROP, MIN_MASS, RoleTable, head_role_table
from mesainterp.tasks import GraphSearchTask, MazeTask, TreePathTask

N, BOOT = 32, 200


@pytest.fixture(scope="module")
def tree() -> tuple[RoleTable, RoleTable]:
    task = TreePathTask()
    planted = planted_model(task)
    kw = {"n": N, "n_boot": BOOT, "steps": 2}
    return head_role_table(planted.model, task, **kw), head_role_table(planted.control, task, **kw)


def test_thresholds_are_the_declared_ones() -> None:
    assert (MIN_MASS, MAX_CHANCE, MIN_DROP) == (0.5, 0.25, 0.1)


def test_planted_tree_heads_get_their_planted_relation(tree: tuple[RoleTable, RoleTable]) -> None:
    table, _ = tree
    depth = TreePathTask().max_depth
    last = depth + 1
    planted = {
        ("L0H0", "edge child tokens", "previous token"),
        ("L0H1", ":", "previous token = goal"),  # at ":" the goal is the previous token
        ("L0H1", "answer 1", "goal"),
        ("L0H1", "answer 2", "goal"),
        *{
            (f"L{layer}H0", ":", f"edge into goal ancestor {layer - 1}")
            for layer in range(1, depth + 1)
        },
        (f"L{last}H0", "answer 1", "edge onto path"),
        (f"L{last}H0", "answer 2", "edge onto path"),
        (f"L{last}H1", ":", "self = :"),
    }
    supported = table.labels(supported=True)
    assert planted <= supported, planted - supported
    # Only the planted heads (and never the all-zero H1 of the climbing layers) matter.
    heads = {head for head, _, _ in supported}
    assert heads == {"L0H0", "L0H1", f"L{last}H0", f"L{last}H1"} | {
        f"L{layer}H0" for layer in range(1, depth + 1)
    }


def test_sink_attention_is_labelled_but_not_supported(tree: tuple[RoleTable, RoleTable]) -> None:
    table, _ = tree
    sink = [r for r in table.assigned() if r.relation.endswith("|") and r.query_role == "goal"]
    assert sink and not any(r.supported for r in sink)
    assert all(r.drop is not None and abs(r.drop) < MIN_DROP for r in sink)


def test_random_init_twin_gets_no_role(tree: tuple[RoleTable, RoleTable]) -> None:
    _, control = tree
    assert control.labels() == set()
    assert max(r.mass for r in control.rows) < MIN_MASS


def test_table_round_trips_to_json(tree: tuple[RoleTable, RoleTable]) -> None:
    import json

    table, _ = tree
    data = json.loads(table.to_json())
    assert data["settings"]["min_mass"] == MIN_MASS
    assert len(data["rows"]) == len(table.rows)
    assert "L0H0 @ edge child tokens: previous token" in table.summary()


def test_planted_graph_reach_heads() -> None:
    """Planted reachability (`planted_graph`): block l's H0 (l < L) attends to the edges
    into the goal's ancestors found so far (vertices within l - 1 steps of the goal);
    the planning heads at ":" attend to path edge j but write subspaces nothing reads,
    so their ablation must not be supported."""
    task = GraphSearchTask(n_vertices=8, max_lookahead=3, extra_edges=1)
    planted = planted_model(task)
    table = head_role_table(planted.model, task, n=N, n_boot=BOOT, steps=1)
    supported = table.labels(supported=True)
    lookahead = task.max_lookahead
    expected = {
        ("L0H0", "edge head tokens", "previous token"),
        ("L0H1", "answer 1", "goal"),
        *{
            (f"L{layer}H0", "answer 1", f"edges into goal within {layer - 1}")
            for layer in range(1, lookahead)
        },
        (f"L{2 * lookahead - 1}H1", "answer 1", "edge onto path = path edge 1"),
        (f"L{2 * lookahead - 1}H2", ":", "start"),
    }
    assert expected <= supported, expected - supported
    planning = {(f"L{lookahead - 1 + j}H0", ":", f"path edge {j}") for j in range(1, lookahead + 1)}
    assert planning <= table.labels()
    assert not planning & supported
    control = head_role_table(planted.control, task, n=N, n_boot=BOOT, steps=1)
    assert control.labels() == set()


@pytest.mark.slow
def test_planted_maze_flood_and_readout_heads() -> None:
    """Planted flood fill (`planted_maze`, 3x3): block 0's H1 puts the target into the
    filled set at the answer positions; block 1's H0 / H1 attend to the target's own
    connections (second / first cell the target); the last block's H0 / H1 follow the
    connection to the next path cell, one orientation each. Later flood steps name most
    connections of a 3x3 maze, so they are indistinguishable from uniform attention and
    get no role. The random-init twin gets none either."""
    task = MazeTask(grid_n=3)
    planted = planted_model(task)
    table = head_role_table(planted.model, task, n=N, n_boot=BOOT, steps=1)
    last = task.n_cells + 1
    expected = {
        ("L0H1", "answer 1", "target"),
        ("L1H0", "answer 1", "connections with second cell within 0 of target"),
        ("L1H1", "answer 1", "connections with first cell within 0 of target"),
        (f"L{last}H0", "answer 1", "connection to next (current first)"),
        (f"L{last}H1", "answer 1", "connection to next (current second)"),
    }
    assert expected <= table.labels(), expected - table.labels()
    readout = {(h, role, rel) for h, role, rel in expected if h.startswith(f"L{last}")}
    assert readout <= table.labels(supported=True)
    control = head_role_table(planted.control, task, n=N, n_boot=BOOT, steps=1)
    assert control.labels() == set()
