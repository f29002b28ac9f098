"""The built-in relations and query roles of each path task, and of a user's prompts.

Every path task lays its edges out as three tokens, `a b ,` at positions 3e, 3e+1,
3e+2, then a few marker tokens and ":", then the answer path. An edge relation
names all three tokens of the edge, since a model may read an edge at its first
token, its second, or the comma that follows.

Query roles: the edges' second tokens (where a previous-token head writes the
edge), the markers and their ids, ":" and "answer k" (k = 1, 2, ...: the position
holding the k-th path token, which predicts the (k+1)-th).

    tree-path      goal, ":"; relations to the goal, "|", ":", the edge into / edges
                   out of the current node, the edge from it onto the path, and the
                   edge into the goal's k-th ancestor (k = 0 is the goal itself)
    graph-search   start, goal, ":"; relations to start, goal, "<s>", ":", the edges
                   into / out of the current vertex, the edge from it onto the path,
                   the edges into vertices within k steps of the goal, path edge j
    maze           origin, target, ":"; relations to origin, target, "<o>", ":", the
                   connections at the current cell, the connection to the next path
                   cell (listed from the current cell, or into it), and the
                   connections whose first / second cell is within k steps of the target
    prompts        one query role and one relation per named role ("attend to S2")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesainterp.errors import ConfigError, allowed
from mesainterp.mechanism.relations import (
    QueryRole,
    Relation,
    prefix,
    previous_token,
    same_token,
    self_token,
)
from mesainterp.tasks.base import TaskBatch

__all__ = [
    "RELATION_TASKS",
    "prompt_query_roles",
    "prompt_relations",
    "task_query_roles",
    "task_relations",
]

RELATION_TASKS = ("tree-path", "graph-search", "maze")


def _at(pos: int) -> Callable[[TaskBatch, int, int], list[int]]:
    return lambda batch, b, q: [pos]


def _edge(e: int) -> list[int]:
    return [3 * e, 3 * e + 1, 3 * e + 2]


def _token(batch: TaskBatch, b: int, q: int) -> int:
    return int(batch.inputs[b, q])


def _edges_where(
    n_edges: int, keep: Callable[[TaskBatch, int, int, int, int], bool]
) -> Callable[[TaskBatch, int, int], list[int]]:
    """Keys: the edges e whose tokens (a, b) satisfy keep(batch, ex, q, a, b)."""

    def keys(batch: TaskBatch, ex: int, q: int) -> list[int]:
        row = batch.inputs[ex]
        out: list[int] = []
        for e in range(n_edges):
            if keep(batch, ex, q, int(row[3 * e]), int(row[3 * e + 1])):
                out += _edge(e)
        return out

    return keys


def _path(batch: TaskBatch, ex: int) -> list[int]:
    return [int(v) for v in batch.labels["path"][ex] if int(v) >= 0]


def _next_on_path(batch: TaskBatch, ex: int, node: int) -> int | None:
    path = _path(batch, ex)
    if node in path[:-1]:
        return path[path.index(node) + 1]
    return None


def _answer_roles(prompt_len: int, steps: int) -> list[QueryRole]:
    def role(k: int) -> QueryRole:
        def positions(batch: TaskBatch, b: int) -> list[int]:
            return [prompt_len - 1 + k] if len(_path(batch, b)) >= k else []

        return QueryRole(f"answer {k}", positions, f"holds path token {k}, predicts the next")

    return [role(k) for k in range(1, steps + 1)]


def _fixed(name: str, pos: int) -> QueryRole:
    return QueryRole(name, lambda batch, b: [pos])


def _second_tokens(n_edges: int, name: str, *, skip: int | None = None) -> QueryRole:
    def positions(batch: TaskBatch, b: int) -> list[int]:
        row = batch.inputs[b]
        return [3 * e + 1 for e in range(n_edges) if skip is None or int(row[3 * e]) != skip]

    return QueryRole(name, positions)


def _common(prompt_len: int) -> list[Relation]:
    return [previous_token(), self_token(), Relation(":", _at(prompt_len - 1))]


# ---- tree-path ---------------------------------------------------------------------


def _tree(task: Any, steps: int) -> tuple[list[QueryRole], list[Relation]]:
    p, n_edges, n = int(task.prompt_len), int(task.n_edges), int(task.n_nodes)
    is_node = lambda batch, ex, q: _token(batch, ex, q) < n  # noqa: E731

    def edge_into(node_of: Callable[[TaskBatch, int, int], int | None]) -> Callable[..., list[int]]:
        def keys(batch: TaskBatch, ex: int, q: int) -> list[int]:
            node = node_of(batch, ex, q)
            if node is None:
                return []
            e = int(batch.labels["edge_pos"][ex, node])
            return [] if e < 0 else _edge(e // 3)

        return keys

    def current(batch: TaskBatch, ex: int, q: int) -> int | None:
        return _token(batch, ex, q) if is_node(batch, ex, q) else None

    def ancestor(k: int) -> Callable[[TaskBatch, int, int], int | None]:
        def node(batch: TaskBatch, ex: int, q: int) -> int | None:
            if k == 0:
                return int(batch.labels["goal"][ex])
            v = int(batch.labels["ancestors"][ex, k - 1])
            return v if v >= 0 else None

        return node

    def next_node(batch: TaskBatch, ex: int, q: int) -> int | None:
        node = current(batch, ex, q)
        return None if node is None else _next_on_path(batch, ex, node)

    relations = [
        *_common(p),
        Relation("goal", _at(p - 2)),
        Relation("|", _at(p - 3)),
        Relation("edge into current", edge_into(current)),
        Relation(
            "edges out of current",
            _edges_where(
                n_edges, lambda bt, ex, q, a, c: is_node(bt, ex, q) and a == _token(bt, ex, q)
            ),
        ),
        Relation(
            "edge onto path", edge_into(next_node), "from the current node to the next path node"
        ),
        *(
            Relation(f"edge into goal ancestor {k}", edge_into(ancestor(k)))
            for k in range(int(task.max_depth))
        ),
    ]
    roles = [
        _second_tokens(n_edges, "edge child tokens"),
        _fixed("goal", p - 2),
        _fixed(":", p - 1),
        *_answer_roles(p, steps),
    ]
    return roles, relations


# ---- graph-search ------------------------------------------------------------------


def _graph(task: Any, steps: int) -> tuple[list[QueryRole], list[Relation]]:
    p, n_edges, n = int(task.prompt_len), int(task.max_edges), int(task.n_vertices)
    is_vertex = lambda batch, ex, q: _token(batch, ex, q) < n  # noqa: E731

    def out_of(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
        return is_vertex(bt, ex, q) and a == _token(bt, ex, q)

    def onto_path(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
        return out_of(bt, ex, q, a, c) and c < n and bool(bt.labels["on_path"][ex, c])

    def near_goal(k: int) -> Callable[..., bool]:
        def keep(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
            if c >= n:
                return False
            d = int(bt.labels["distance_to_goal"][ex, c])
            return 0 <= d <= k

        return keep

    def path_edge(j: int) -> Callable[..., bool]:
        def keep(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
            path = _path(bt, ex)
            return j < len(path) and (a, c) == (path[j - 1], path[j])

        return keep

    relations = [
        *_common(p),
        Relation("start", _at(p - 4)),
        Relation("goal", _at(p - 2)),
        Relation("<s>", _at(p - 5)),
        Relation(
            "edges into current",
            _edges_where(
                n_edges, lambda bt, ex, q, a, c: is_vertex(bt, ex, q) and c == _token(bt, ex, q)
            ),
        ),
        Relation("edges out of current", _edges_where(n_edges, out_of)),
        Relation("edge onto path", _edges_where(n_edges, onto_path)),
        *(
            Relation(f"edges into goal within {k}", _edges_where(n_edges, near_goal(k)))
            for k in range(int(task.max_lookahead))
        ),
        *(
            Relation(f"path edge {j}", _edges_where(n_edges, path_edge(j)))
            for j in range(1, int(task.max_lookahead) + 1)
        ),
    ]
    roles = [
        _second_tokens(n_edges, "edge head tokens", skip=int(task.pad)),
        _fixed("start", p - 4),
        _fixed("goal", p - 2),
        _fixed(":", p - 1),
        *_answer_roles(p, steps),
    ]
    return roles, relations


# ---- maze --------------------------------------------------------------------------


def _maze(task: Any, steps: int) -> tuple[list[QueryRole], list[Relation]]:
    p, n_edges, n = int(task.prompt_len), int(task.n_edges), int(task.n_cells)
    is_cell = lambda batch, ex, q: _token(batch, ex, q) < n  # noqa: E731

    def at_current(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
        return is_cell(bt, ex, q) and _token(bt, ex, q) in (a, c)

    def to_next(first: bool) -> Callable[..., bool]:
        def keep(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
            if not is_cell(bt, ex, q):
                return False
            here = _token(bt, ex, q)
            nxt = _next_on_path(bt, ex, here)
            return nxt is not None and (a, c) == ((here, nxt) if first else (nxt, here))

        return keep

    def near_target(k: int, end: int) -> Callable[..., bool]:
        def keep(bt: TaskBatch, ex: int, q: int, a: int, c: int) -> bool:
            d = int(bt.labels["distance_to_target"][ex, (a, c)[end]])
            return 0 <= d <= k

        return keep

    relations = [
        *_common(p),
        Relation("origin", _at(p - 4)),
        Relation("target", _at(p - 2)),
        Relation("<o>", _at(p - 5)),
        Relation("connections at current", _edges_where(n_edges, at_current)),
        Relation("connection to next (current first)", _edges_where(n_edges, to_next(True))),
        Relation("connection to next (current second)", _edges_where(n_edges, to_next(False))),
        *(
            Relation(
                f"connections with {which} cell within {k} of target",
                _edges_where(n_edges, near_target(k, end)),
            )
            for k in range(n - 1)
            for end, which in ((0, "first"), (1, "second"))
        ),
    ]
    roles = [
        _second_tokens(n_edges, "connection second tokens"),
        _fixed("origin", p - 4),
        _fixed("target", p - 2),
        _fixed(":", p - 1),
        *_answer_roles(p, steps),
    ]
    return roles, relations


_BUILDERS = {"tree-path": _tree, "graph-search": _graph, "maze": _maze}


def _build(task: Any, steps: int | None) -> tuple[list[QueryRole], list[Relation]]:
    name = getattr(task, "name", None)
    if name not in _BUILDERS:
        raise ConfigError("task", f"no built-in relations for {name!r}", allowed(RELATION_TASKS))
    longest = int(task.seq_len) - int(task.prompt_len) - 1
    return _BUILDERS[name](task, longest if steps is None else min(steps, longest))


def task_relations(task: Any) -> list[Relation]:
    """The built-in relations of a path task (see the module docstring)."""
    return _build(task, None)[1]


def task_query_roles(task: Any, *, steps: int | None = None) -> list[QueryRole]:
    """The built-in query roles of a path task, with answer steps 1..`steps` (default all)."""
    return _build(task, steps)[0]


# ---- a user's prompts ----------------------------------------------------------------


def _role_position(name: str) -> Callable[[TaskBatch, int, int], list[int]]:
    return lambda batch, b, q: [int(batch.labels[name][b])]


def _role_query(name: str) -> Callable[[TaskBatch, int], list[int]]:
    return lambda batch, b: [int(batch.labels[name][b])]


def prompt_relations(pairs: Any) -> list[Relation]:
    """One relation per named role of a `PromptPairs` ("attend to the S2 token"), plus
    previous token, self, same token and prefix."""
    roles = [Relation(f"role {name}", _role_position(name)) for name in pairs.roles]
    return [previous_token(), self_token(), same_token(), prefix(), *roles]


def prompt_query_roles(pairs: Any) -> list[QueryRole]:
    """One query role per named role, the last prompt position, and every position."""
    last = int(pairs.prompt_len) - 1
    roles = [QueryRole(name, _role_query(name)) for name in pairs.roles]
    return [
        *roles,
        QueryRole("last", lambda batch, b: [last]),
        QueryRole("every position", lambda batch, b: range(last + 1)),
    ]
