"""Search in a DAG (after Saparov et al. 2025): the path from a start vertex to a goal.

Prompt: the edge list, padded to a fixed edge count with "PAD PAD ," edges
shuffled in among the real ones, then "<s>" start "<g>" goal ":"; answer: the
path start ... goal, END, PAD. Every edge is three tokens (tail, head, ","), so

    prompt_len = 3 * max_edges + 5,   max_edges = n_vertices - 1 + extra_edges,
    seq_len    = prompt_len + max_lookahead + 2.

Tokens: vertex labels `0 .. n_vertices-1` (randomly permuted), then "," "<s>"
"<g>" ":" END PAD.

The "balanced" distribution, so that cheap heuristics fail:
1. The lookahead L (distance start -> goal) is uniform in [1, max_lookahead].
2. The start has `n_branches` out-going chains of exactly L edges each; one ends
   at the goal, the others are distractors of the same length, so neither
   "take the longest branch" nor out-degree tells them apart.
3. Every vertex has a level (start 0, chain vertices their depth); the other
   vertices get a random level in [0, max_lookahead] and one edge to (level 0)
   or from (level >= 1) a vertex of another level, and `extra_edges` random
   edges from lower to higher levels are tried. The levels keep the graph
   acyclic.
4. An edge u -> w is refused when u is reachable from the start and w reaches
   the goal: exactly the edges that would open a second start -> goal path, so
   the path is unique (and edges into the goal from unreachable vertices still
   appear, so backward chaining must check reachability). A side effect to
   keep in mind when reading a model: vertices on the path never get a second
   in-edge from a vertex reachable from the start, while distractor vertices can.

Labels (batch-first): "start", "goal", "lookahead" [batch]; "path"
[batch, max_lookahead + 1] padded with -1; per vertex label [batch, n_vertices]:
"reachable" (from the start, the start included), "distance_to_goal" and
"distance_from_start" (shortest directed distances, -1 where none), "on_path".

Held-out split (`split`, `test_fraction`): with split "train" or "test" every
example (for pairs: the clean half) is kept only if a stable hash of its
underlying problem (the edge set, start and goal) falls in that split, a
`test_fraction` share going to "test". Train on "train" and score on "test"
and no problem is shared, whatever the seeds. The default "all" keeps
everything.

Counterfactual families (`answer_pos` predicts the first differing path vertex):
- "goal": the same graph, edge order and start, a different goal with a unique
  path from the start that diverges from the clean one (neither goal on the
  other's path), at the same lookahead when one exists.
- "rewire": the same start, goal, labels and edge order in a different graph:
  the edge into the goal (p, goal) becomes (d, goal), d a vertex reachable from
  the start off the clean path, so the prompts differ in one token (that edge's
  tail) and the path now runs through d. The new path is still the only one and
  no longer than `max_lookahead`, the graph still acyclic; d at the clean
  lookahead's level when one exists, so the lookahead usually stays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.tasks._common import (
    PathTask,
    Split,
    Uniforms,
    check_int,
    check_split,
    in_split,
    pair_at_positions,
    pick_family,
)
from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, TaskBatch

__all__ = ["DagInstance", "GraphSearchTask"]


@dataclass(frozen=True, kw_only=True)
class DagInstance:
    """One example: real edges (tail, head) in prompt order, start, goal, unique path."""

    n_vertices: int
    edges: tuple[tuple[int, int], ...]
    start: int
    goal: int
    path: tuple[int, ...]


def _reach(adj: list[set[int]], a: int) -> set[int]:
    seen = {a}
    stack = [a]
    while stack:
        for w in adj[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def _bfs_dist(adj: list[set[int]], a: int) -> list[int]:
    dist = [-1] * len(adj)
    dist[a] = 0
    queue = deque([a])
    while queue:
        v = queue.popleft()
        for w in adj[v]:
            if dist[w] < 0:
                dist[w] = dist[v] + 1
                queue.append(w)
    return dist


def _count_paths(adj: list[set[int]], a: int, b: int, cap: int = 2) -> int:
    """Number of a -> b paths in a DAG, saturating at `cap`."""
    memo: dict[int, int] = {}

    def go(v: int) -> int:
        if v == b:
            return 1
        if v not in memo:
            memo[v] = min(cap, sum(go(w) for w in adj[v]))
        return memo[v]

    return go(a)


def _unique_path(adj: list[set[int]], a: int, b: int) -> list[int]:
    """The a -> b path, following the only successor that reaches b."""
    path = [a]
    while path[-1] != b:
        path.append(next(w for w in sorted(adj[path[-1]]) if b in _reach(adj, w)))
    return path


@dataclass(frozen=True, kw_only=True)
class GraphSearchTask(PathTask):
    """Start-to-goal path in a random DAG with a unique path. See the module docstring."""

    name: ClassVar[str] = "graph-search"
    counterfactual_families: ClassVar[tuple[str, ...]] = ("goal", "rewire")

    n_vertices: int = 16
    max_lookahead: int = 5
    n_branches: int = 2
    extra_edges: int = 4
    split: Split = "all"
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        t = self.name
        check_int(t, "n_vertices", self.n_vertices, 3, 200)
        check_int(t, "max_lookahead", self.max_lookahead, 1, self.n_vertices - 1)
        check_int(t, "n_branches", self.n_branches, 2, self.n_vertices - 1)
        check_int(t, "extra_edges", self.extra_edges, 0, 4 * self.n_vertices)
        check_split(t, self.split, self.test_fraction)
        need = 1 + self.n_branches * self.max_lookahead
        if need > self.n_vertices:
            raise ConfigError(
                f"{t}.n_vertices",
                f"{self.n_branches} branches of {self.max_lookahead} edges need {need} vertices,"
                f" got {self.n_vertices}",
                f"an int >= {need}, or lower max_lookahead / n_branches",
            )

    # ---- vocabulary and layout -------------------------------------------------
    @property
    def comma(self) -> int:
        return self.n_vertices

    @property
    def start_marker(self) -> int:
        return self.n_vertices + 1

    @property
    def goal_marker(self) -> int:
        return self.n_vertices + 2

    @property
    def path_marker(self) -> int:
        return self.n_vertices + 3

    @property
    def end(self) -> int:
        return self.n_vertices + 4

    @property
    def pad(self) -> int:
        return self.n_vertices + 5

    @property
    def d_vocab(self) -> int:
        return self.n_vertices + 6

    @property
    def d_vocab_out(self) -> int:
        return self.d_vocab

    @property
    def vocab(self) -> tuple[str, ...]:
        return (*(str(i) for i in range(self.n_vertices)), ",", "<s>", "<g>", ":", "END", "PAD")

    @property
    def max_edges(self) -> int:
        return self.n_vertices - 1 + self.extra_edges

    @property
    def prompt_len(self) -> int:
        return 3 * self.max_edges + 5

    @property
    def start_pos(self) -> int:
        return self.prompt_len - 4

    @property
    def goal_pos(self) -> int:
        return self.prompt_len - 2

    @property
    def seq_len(self) -> int:
        return self.prompt_len + self.max_lookahead + 2

    # ---- generation ------------------------------------------------------------
    def _graph(self, u: Uniforms) -> tuple[list[set[int]], int, int, int]:
        """Structural graph (start = vertex 0): adjacency, start, goal, lookahead."""
        n, big_l = self.n_vertices, 1 + u.below(self.max_lookahead)
        adj: list[set[int]] = [set() for _ in range(n)]
        level = [0] * n
        v = 1
        goal = -1
        for branch in range(self.n_branches):
            prev = 0
            for depth in range(1, big_l + 1):
                level[v] = depth
                adj[prev].add(v)
                prev, v = v, v + 1
            if branch == 0:
                goal = prev
        reach_start = _reach(adj, 0)
        for f in range(v, n):
            level[f] = u.below(self.max_lookahead + 1)
            if level[f] == 0:
                adj[f].add(u.choice([w for w in range(f) if level[w] > 0]))
            else:
                p = u.choice([w for w in range(f) if level[w] < level[f]])
                adj[p].add(f)
                if p in reach_start:
                    reach_start.add(f)
        added = 0
        for _ in range(10 * self.extra_edges):
            if added == self.extra_edges:
                break
            a, b = u.below(n), u.below(n)
            if level[a] >= level[b] or b in adj[a]:
                continue
            if a in reach_start and goal in _reach(adj, b):
                continue  # would open a second start -> goal path
            adj[a].add(b)
            added += 1
            if a in reach_start:
                reach_start |= _reach(adj, b)
        return adj, 0, goal, big_l

    def _render(
        self, u: Uniforms, adj: list[set[int]]
    ) -> tuple[tuple[int, ...], tuple[tuple[int, int] | None, ...]]:
        """A label permutation and a shuffled edge order with padding slots."""
        label = tuple(u.shuffled(range(self.n_vertices)))
        edges: list[tuple[int, int] | None] = [(a, b) for a in range(len(adj)) for b in adj[a]]
        edges += [None] * (self.max_edges - len(edges))
        return label, tuple(u.shuffled(edges))

    def _instance(
        self,
        adj: list[set[int]],
        label: tuple[int, ...],
        slots: tuple[tuple[int, int] | None, ...],
        start: int,
        goal: int,
    ) -> tuple[DagInstance, tuple[int | None, ...]]:
        flat: list[int | None] = []
        for e in slots:
            flat += [None, None] if e is None else [label[e[0]], label[e[1]]]
        inst = DagInstance(
            n_vertices=self.n_vertices,
            edges=tuple((label[a], label[b]) for e in slots if e is not None for a, b in [e]),
            start=label[start],
            goal=label[goal],
            path=tuple(label[x] for x in _unique_path(adj, start, goal)),
        )
        return inst, tuple(flat)

    def _batch(self, items: list[tuple[DagInstance, tuple[int | None, ...]]]) -> TaskBatch:
        n, p0, nv = len(items), self.prompt_len, self.n_vertices
        inputs = np.full((n, self.seq_len), self.pad, dtype=np.int64)
        targets = np.full((n, self.seq_len), IGNORE_INDEX, dtype=np.int64)
        start = np.empty(n, dtype=np.int64)
        goal = np.empty(n, dtype=np.int64)
        lookahead = np.empty(n, dtype=np.int64)
        path = np.full((n, self.max_lookahead + 1), -1, dtype=np.int64)
        reachable = np.zeros((n, nv), dtype=bool)
        on_path = np.zeros((n, nv), dtype=bool)
        dist_goal = np.empty((n, nv), dtype=np.int64)
        dist_start = np.empty((n, nv), dtype=np.int64)
        for b, (inst, flat) in enumerate(items):
            row = inputs[b]
            for e in range(self.max_edges):
                x, y = flat[2 * e], flat[2 * e + 1]
                row[3 * e : 3 * e + 3] = (
                    self.pad if x is None else x,
                    self.pad if y is None else y,
                    self.comma,
                )
            row[p0 - 5 : p0] = (
                self.start_marker,
                inst.start,
                self.goal_marker,
                inst.goal,
                self.path_marker,
            )
            k = len(inst.path)
            row[p0 : p0 + k] = inst.path
            row[p0 + k] = self.end
            targets[b, p0 - 1 : p0 + k] = row[p0 : p0 + k + 1]
            start[b], goal[b], lookahead[b] = inst.start, inst.goal, k - 1
            path[b, :k] = inst.path
            on_path[b, list(inst.path)] = True
            fwd: list[set[int]] = [set() for _ in range(nv)]
            bwd: list[set[int]] = [set() for _ in range(nv)]
            for x, y in inst.edges:
                fwd[x].add(y)
                bwd[y].add(x)
            dist_start[b] = _bfs_dist(fwd, inst.start)
            dist_goal[b] = _bfs_dist(bwd, inst.goal)
            reachable[b] = dist_start[b] >= 0
        labels = {
            "start": start,
            "goal": goal,
            "lookahead": lookahead,
            "path": path,
            "on_path": on_path,
            "reachable": reachable,
            "distance_to_goal": dist_goal,
            "distance_from_start": dist_start,
        }
        return TaskBatch(
            inputs=torch.from_numpy(inputs),
            targets=torch.from_numpy(targets),
            prompt_len=p0,
            labels={k: torch.from_numpy(v) for k, v in labels.items()},
            instances=[inst for inst, _ in items],
        )

    def sample(self, n: int, *, seed: int) -> TaskBatch:
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        u = Uniforms([seed, 0])
        items: list[tuple[DagInstance, tuple[int | None, ...]]] = []
        while len(items) < n:
            adj, start, goal, _ = self._graph(u)
            label, slots = self._render(u, adj)
            item = self._instance(adj, label, slots, start, goal)
            if self._in_split(item[0]):
                items.append(item)
        return self._batch(items)

    def _in_split(self, inst: DagInstance) -> bool:
        key = (sorted(inst.edges), inst.start, inst.goal)
        return in_split(key, self.split, self.test_fraction)

    def counterfactual_pairs(
        self, n: int, *, seed: int, family: str | None = None
    ) -> CounterfactualPair:
        family = pick_family(self, family)
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        if family == "rewire":
            return self._rewire_pairs(n, Uniforms([seed, 2]))
        u = Uniforms([seed, 1])
        clean: list[tuple[DagInstance, tuple[int | None, ...]]] = []
        corrupt: list[tuple[DagInstance, tuple[int | None, ...]]] = []
        pos: list[int] = []
        while len(clean) < n:
            adj, start, goal, big_l = self._graph(u)
            path = _unique_path(adj, start, goal)
            dist = _bfs_dist(adj, start)
            reach_goal = _reach(adj, goal)
            candidates = [
                v
                for v in range(self.n_vertices)
                if dist[v] > 0
                and v not in path
                and v not in reach_goal
                and _count_paths(adj, start, v) == 1
            ]
            if not candidates:
                continue
            same = [v for v in candidates if dist[v] == big_l]
            other = u.choice(same or candidates)
            label, slots = self._render(u, adj)
            c = self._instance(adj, label, slots, start, goal)
            r = self._instance(adj, label, slots, start, other)
            i = next(
                i for i, (x, y) in enumerate(zip(c[0].path, r[0].path, strict=False)) if x != y
            )
            if not self._in_split(c[0]):
                continue
            clean.append(c)
            corrupt.append(r)
            pos.append(self.prompt_len - 1 + i)
        return pair_at_positions(family, self._batch(clean), self._batch(corrupt), pos)

    def _new_tails(self, adj: list[set[int]], start: int, goal: int) -> list[int]:
        """Vertices d for which replacing the goal's in-edge on the path by (d, goal)
        leaves a DAG with a unique start -> goal path of at most max_lookahead edges."""
        path = _unique_path(adj, start, goal)
        dist, reach_goal = _bfs_dist(adj, start), _reach(adj, goal)
        out = []
        for d in range(self.n_vertices):
            if d in path or dist[d] < 0 or d in reach_goal or dist[d] + 1 > self.max_lookahead:
                continue
            moved = [set(a) for a in adj]
            moved[path[-2]].discard(goal)
            moved[d].add(goal)
            if _count_paths(moved, start, goal) == 1:
                out.append(d)
        return out

    def _rewire_pairs(self, n: int, u: Uniforms) -> CounterfactualPair:
        clean: list[tuple[DagInstance, tuple[int | None, ...]]] = []
        corrupt: list[tuple[DagInstance, tuple[int | None, ...]]] = []
        pos: list[int] = []
        for _attempt in range(10000 * n):
            if len(clean) == n:
                break
            adj, start, goal, big_l = self._graph(u)
            tails = self._new_tails(adj, start, goal)
            if not tails:
                continue
            dist = _bfs_dist(adj, start)
            d = u.choice([v for v in tails if dist[v] == big_l - 1] or tails)
            tail = _unique_path(adj, start, goal)[-2]
            moved = [set(a) for a in adj]
            moved[tail].discard(goal)
            moved[d].add(goal)
            label, slots = self._render(u, adj)
            new_slots = tuple((d, goal) if e == (tail, goal) else e for e in slots)
            c = self._instance(adj, label, slots, start, goal)
            if not self._in_split(c[0]):
                continue
            r = self._instance(moved, label, new_slots, start, goal)
            clean.append(c)
            corrupt.append(r)
            pos.append(self.prompt_len - 1 + _first_diff(c[0].path, r[0].path))
        if len(clean) < n:
            raise ConfigError(
                f"{self.name}.max_lookahead",
                f"no graph whose goal edge can be rewired in {10000 * n} draws",
                "more room: a larger max_lookahead, n_branches or n_vertices",
            )
        return pair_at_positions("rewire", self._batch(clean), self._batch(corrupt), pos)

    def render(self, tokens: Int[Tensor, " pos"] | list[int]) -> str:
        ids = tokens.tolist() if isinstance(tokens, Tensor) else list(tokens)
        return " ".join(self.vocab[i] for i in ids)


def _first_diff(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """First index where two start-to-goal paths differ (neither is a prefix of the
    other: both end at the goal, which appears once)."""
    return next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
