"""Lattice maze solving (Ivanitskiy et al. 2023): the path of cells from origin to target.

Mazes come from the `maze-dataset` package's depth-first-search generator
(`LatticeMazeGenerators.gen_dfs`), called directly so nothing is written to
disk (its dataset classes cache to `data/maze_dataset`). A perfect maze is a
spanning tree of the grid, so it always has `n_cells - 1` connections and the
path between two cells is unique.

Cells are numbered `row * grid_n + col`. Layout:

    a b , a b , ... , <o> origin <t> target :  origin c1 ... target END PAD ...

- `n_cells - 1` connections (cell pair in random order, then ","), edges in
  random order; then "<o>" origin "<t>" target ":", so
  `prompt_len = 3 * (n_cells - 1) + 5`.
- The answer is the path (origin first, 1 to n_cells cells), END, PAD up to
  `seq_len = prompt_len + n_cells + 1`. Targets: the path and END.
- Tokens: cells `0 .. n_cells-1`, then "," "<o>" "<t>" ":" END PAD.

Default grid 4x4: 16 cells, 67 tokens, paths up to 16 cells; small enough for
a ~1M-parameter model to train on CPU in minutes (the maze-transformer models
used 5x5 to 7x7 grids at larger compute budgets).

Origin and target are two distinct cells drawn uniformly.

Labels (batch-first): "origin", "target", "path_len" [batch]; "path" and
"current" [batch, n_cells] (the same: the cell at each step, padded with -1),
"next_move" [batch, n_cells]; per cell [batch, n_cells]: "on_path",
"distance_to_target"; "adjacency" [batch, n_cells, n_cells] (bool, symmetric).

Step labels: step k (0-based) is the input position `prompt_len + k`, where
the model has read path cell k and predicts cell k+1. `current[b, k]` is that
cell, `next_move[b, k]` the move to cell k+1 (0 N, 1 E, 2 S, 3 W), -1 past the
end (the target's step predicts END).

Held-out split (`split`, `test_fraction`): with split "train" or "test" every
example (for pairs: the clean half) is kept only if a stable hash of its
underlying problem (the set of connections, origin and target) falls in that
split, a `test_fraction` share going to "test". Train on "train" and score on
"test" and no problem is shared, whatever the seeds. The default "all" keeps
everything. `split_by` says what the hash is of: "problem" (the default, the
maze with its origin and target: a test maze may have been seen in training
with other endpoints) or "maze" (the set of connections alone: every test maze
is unseen in training, which is what "held-out mazes" means; on a 3x3 grid,
with 192 DFS mazes, about `test_fraction` of them).

Counterfactual families:
- "target": same maze (edge list and order) and origin, a different target whose
  path diverges from the clean one (neither target lies on the other's path).
  `answer_pos` predicts the first differing path cell.
- "origin": same maze and target, a different origin whose first move goes to a
  different cell; `answer_pos = prompt_len` (the first move).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.tasks._common import (
    PathTask,
    Split,
    Uniforms,
    check_choice,
    check_int,
    check_split,
    in_split,
    pair_at_positions,
    pick_family,
)
from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, TaskBatch

__all__ = [
    "MOVES",
    "MOVE_NAMES",
    "MazeInstance",
    "MazeTask",
    "SplitBy",
    "generate_dfs_connections",
]

SplitBy = Literal["problem", "maze"]

# (d_row, d_col) of each move label.
MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
MOVE_NAMES = ("N", "E", "S", "W")


@dataclass(frozen=True, kw_only=True)
class MazeInstance:
    """One example: connections (cell pairs) in prompt order, origin, target, path."""

    grid_n: int
    edges: tuple[tuple[int, int], ...]
    origin: int
    target: int
    path: tuple[int, ...]


def generate_dfs_connections(grid_n: int, seeds: list[int]) -> list[list[tuple[int, int]]]:
    """One `maze-dataset` DFS maze per seed, as lists of connected cell pairs.

    `gen_dfs` draws from the global `random` and `numpy.random` generators (and
    importing `maze_dataset` reseeds `random`), so both are seeded per maze and
    restored afterwards: the caller's global RNG state is left as it was.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        try:
            from maze_dataset import LatticeMazeGenerators
        except ImportError as err:
            # maze-dataset 1.4.2 imports names that muutils 0.9 removed.
            raise MesaInterpError(
                f"maze-dataset cannot be imported ({err}); it needs muutils>=0.8.3,<0.9"
            ) from err

        out = []
        for s in seeds:
            random.seed(s)
            np.random.seed(s % 2**32)
            start = np.array(divmod(s % (grid_n * grid_n), grid_n))
            maze = LatticeMazeGenerators.gen_dfs((grid_n, grid_n), start_coord=start)
            conn = maze.connection_list  # [2, n, n]: 0 = down, 1 = right
            edges = []
            for r in range(grid_n):
                for c in range(grid_n):
                    if conn[0, r, c]:
                        edges.append((r * grid_n + c, (r + 1) * grid_n + c))
                    if conn[1, r, c]:
                        edges.append((r * grid_n + c, r * grid_n + c + 1))
            out.append(edges)
        return out
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _tree_path(adj: list[list[int]], a: int, b: int) -> list[int]:
    """Unique path a -> b in a tree (BFS parents from a)."""
    prev = {a: -1}
    queue = deque([a])
    while queue:
        v = queue.popleft()
        for w in adj[v]:
            if w not in prev:
                prev[w] = v
                queue.append(w)
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def _distances(adj: list[list[int]], a: int) -> list[int]:
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


@dataclass(frozen=True, kw_only=True)
class MazeTask(PathTask):
    """Origin-to-target path in a DFS lattice maze. See the module docstring."""

    name: ClassVar[str] = "maze"
    counterfactual_families: ClassVar[tuple[str, ...]] = ("target", "origin")

    grid_n: int = 4
    split: Split = "all"
    test_fraction: float = 0.1
    split_by: SplitBy = "problem"

    def __post_init__(self) -> None:
        check_int(self.name, "grid_n", self.grid_n, 2, 8)
        check_split(self.name, self.split, self.test_fraction)
        check_choice(self.name, "split_by", self.split_by, get_args(SplitBy))

    # ---- vocabulary and layout -------------------------------------------------
    @property
    def n_cells(self) -> int:
        return self.grid_n * self.grid_n

    @property
    def comma(self) -> int:
        return self.n_cells

    @property
    def origin_marker(self) -> int:
        return self.n_cells + 1

    @property
    def target_marker(self) -> int:
        return self.n_cells + 2

    @property
    def path_marker(self) -> int:
        return self.n_cells + 3

    @property
    def end(self) -> int:
        return self.n_cells + 4

    @property
    def pad(self) -> int:
        return self.n_cells + 5

    @property
    def d_vocab(self) -> int:
        return self.n_cells + 6

    @property
    def d_vocab_out(self) -> int:
        return self.d_vocab

    @property
    def vocab(self) -> tuple[str, ...]:
        cells = tuple(f"({i // self.grid_n},{i % self.grid_n})" for i in range(self.n_cells))
        return (*cells, ",", "<o>", "<t>", ":", "END", "PAD")

    @property
    def n_edges(self) -> int:
        return self.n_cells - 1

    @property
    def prompt_len(self) -> int:
        return 3 * self.n_edges + 5

    @property
    def origin_pos(self) -> int:
        return self.prompt_len - 4

    @property
    def target_pos(self) -> int:
        return self.prompt_len - 2

    @property
    def seq_len(self) -> int:
        return self.prompt_len + self.n_cells + 1

    def move(self, a: int, b: int) -> int:
        """Move label (0 N, 1 E, 2 S, 3 W) from cell a to neighbouring cell b."""
        d = (b // self.grid_n - a // self.grid_n, b % self.grid_n - a % self.grid_n)
        return MOVES.index(d)

    # ---- generation ------------------------------------------------------------
    def _mazes(self, u: Uniforms, n: int) -> list[tuple[list[tuple[int, int]], list[list[int]]]]:
        seeds = [int(u.random() * 2**62) for _ in range(n)]
        out = []
        for edges in generate_dfs_connections(self.grid_n, seeds):
            edges = [(a, b) if u.random() < 0.5 else (b, a) for a, b in u.shuffled(edges)]
            adj: list[list[int]] = [[] for _ in range(self.n_cells)]
            for a, b in edges:
                adj[a].append(b)
                adj[b].append(a)
            out.append((edges, adj))
        return out

    def _instance(
        self, edges: list[tuple[int, int]], adj: list[list[int]], o: int, t: int
    ) -> MazeInstance:
        return MazeInstance(
            grid_n=self.grid_n,
            edges=tuple(edges),
            origin=o,
            target=t,
            path=tuple(_tree_path(adj, o, t)),
        )

    def _two_cells(self, u: Uniforms) -> tuple[int, int]:
        o = u.below(self.n_cells)
        t = u.below(self.n_cells - 1)
        return o, t + (t >= o)

    def _batch(self, instances: list[MazeInstance]) -> TaskBatch:
        n, p0, nc = len(instances), self.prompt_len, self.n_cells
        inputs = np.full((n, self.seq_len), self.pad, dtype=np.int64)
        targets = np.full((n, self.seq_len), IGNORE_INDEX, dtype=np.int64)
        origin = np.empty(n, dtype=np.int64)
        target = np.empty(n, dtype=np.int64)
        path_len = np.empty(n, dtype=np.int64)
        path = np.full((n, nc), -1, dtype=np.int64)
        next_move = np.full((n, nc), -1, dtype=np.int64)
        on_path = np.zeros((n, nc), dtype=bool)
        adjacency = np.zeros((n, nc, nc), dtype=bool)
        dist = np.empty((n, nc), dtype=np.int64)
        for b, inst in enumerate(instances):
            row = inputs[b]
            adj: list[list[int]] = [[] for _ in range(nc)]
            for e, (x, y) in enumerate(inst.edges):
                row[3 * e : 3 * e + 3] = (x, y, self.comma)
                adjacency[b, x, y] = adjacency[b, y, x] = True
                adj[x].append(y)
                adj[y].append(x)
            row[p0 - 5 : p0] = (
                self.origin_marker,
                inst.origin,
                self.target_marker,
                inst.target,
                self.path_marker,
            )
            k = len(inst.path)
            row[p0 : p0 + k] = inst.path
            row[p0 + k] = self.end
            targets[b, p0 - 1 : p0 + k] = row[p0 : p0 + k + 1]
            origin[b], target[b], path_len[b] = inst.origin, inst.target, k
            path[b, :k] = inst.path
            on_path[b, list(inst.path)] = True
            for i in range(k - 1):
                next_move[b, i] = self.move(inst.path[i], inst.path[i + 1])
            dist[b] = _distances(adj, inst.target)
        labels = {
            "origin": origin,
            "target": target,
            "path_len": path_len,
            "path": path,
            "current": path,
            "next_move": next_move,
            "on_path": on_path,
            "adjacency": adjacency,
            "distance_to_target": dist,
        }
        return TaskBatch(
            inputs=torch.from_numpy(inputs),
            targets=torch.from_numpy(targets),
            prompt_len=p0,
            labels={k: torch.from_numpy(v.copy()) for k, v in labels.items()},
            instances=list(instances),
        )

    def sample(self, n: int, *, seed: int) -> TaskBatch:
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        u = Uniforms([seed, 0])
        instances: list[MazeInstance] = []
        while len(instances) < n:
            for edges, adj in self._mazes(u, n - len(instances)):
                inst = self._instance(edges, adj, *self._two_cells(u))
                if self._in_split(inst):
                    instances.append(inst)
        return self._batch(instances)

    def _in_split(self, inst: MazeInstance) -> bool:
        return in_split(self.split_key(inst), self.split, self.test_fraction)

    def split_key(self, inst: MazeInstance) -> tuple[object, ...]:
        """What the held-out split hashes: the maze's connections (undirected, sorted),
        with the origin and target unless `split_by` is "maze"."""
        maze = sorted((min(e), max(e)) for e in inst.edges)
        return (maze,) if self.split_by == "maze" else (maze, inst.origin, inst.target)

    def counterfactual_pairs(
        self, n: int, *, seed: int, family: str | None = None
    ) -> CounterfactualPair:
        family = pick_family(self, family)
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        u = Uniforms([seed, 1 if family == "target" else 2])
        clean: list[MazeInstance] = []
        corrupt: list[MazeInstance] = []
        pos: list[int] = []
        while len(clean) < n:
            # Draw mazes in rounds; a maze with no valid partner is skipped.
            for edges, adj in self._mazes(u, n - len(clean)):
                o, t = self._two_cells(u)
                c = self._instance(edges, adj, o, t)
                if not self._in_split(c):
                    continue
                partners = []
                for v in range(self.n_cells):
                    if family == "target":
                        if v in c.path:
                            continue
                        r = self._instance(edges, adj, o, v)
                        if t in r.path:
                            continue
                    else:
                        if v in (t, o):
                            continue
                        r = self._instance(edges, adj, v, t)
                        if len(r.path) < 2 or r.path[1] == c.path[1] or len(c.path) < 2:
                            continue
                    partners.append(r)
                if not partners:
                    continue
                r = u.choice(partners)
                i = 1 if family == "origin" else _first_diff(c.path, r.path)
                clean.append(c)
                corrupt.append(r)
                pos.append(self.prompt_len - 1 + i)
        return pair_at_positions(family, self._batch(clean), self._batch(corrupt), pos)

    def render(self, tokens: Int[Tensor, " pos"] | list[int]) -> str:
        ids = tokens.tolist() if isinstance(tokens, Tensor) else list(tokens)
        return " ".join(self.vocab[i] for i in ids if i != self.pad)


def _first_diff(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if i is None:
        raise ConfigError("pair", "paths do not diverge")  # excluded by construction
    return i
