"""Tree path finding (Brinkmann et al. 2024): the path from the root to a goal node.

A random rooted tree gets its node labels randomly permuted; the prompt is the
shuffled edge list and the goal, the answer is the path from the root to the goal:

    p c , p c , ... , p c , | goal :  root n1 ... goal END PAD ...

- `n_nodes - 1` edges of three tokens each (parent, child, ","), then "|", the
  goal and ":", so the prompt length is fixed by the config:
  `prompt_len = 3 * (n_nodes - 1) + 3`.
- The answer is the path (1 to `max_depth + 1` nodes) then END, padded with PAD
  to `seq_len = prompt_len + max_depth + 2`. Targets are next tokens on the path
  and END (the model has to say where the path stops); everything else is
  IGNORE_INDEX.
- Tokens: node labels are `0 .. n_nodes-1`, then "," "|" ":" END PAD.

Goal depth distribution (`goal_depth`):
- "uniform_depth" (default): draw the goal depth uniformly from
  `[min_goal_depth, max_depth]`, grow a spine of that depth from the root, attach
  the other nodes at random (depth <= max_depth, at most `max_children` children),
  then pick the goal uniformly among the nodes at that depth. Deep goals, which
  need the most chaining, are as common as shallow ones.
- "uniform_node": grow the tree at random and pick the goal uniformly among
  nodes of depth >= min_goal_depth (deep goals are then rare).

Defaults (12 nodes, binary, depth <= 5): paths of up to 6 nodes, sequence length
43, vocabulary 17. Backward chaining climbs one level per layer, so a model of
about 6 layers has room for the deepest goals, and a ~1M-parameter model has
few enough distinct structures to fit quickly; Brinkmann et al. used 16 nodes.

Labels (batch-first): "goal", "root", "depth" (of the goal) [batch]; "path"
[batch, max_depth + 1] padded with -1; "ancestors" [batch, max_depth] (k-th
ancestor of the goal at index k - 1, -1 where none); per node label [batch,
n_nodes]: "parent" (-1 for the root), "node_depth", "on_path", "edge_pos" (the
position of the parent token of the edge into that node; the child token is
one later; -1 for the root).

Root given (`root_given`, Brinkmann et al.'s setting): the root still sits
after ":" as the first path token, but the model is never scored on naming it;
the first target is the node below the root.

Held-out split (`split`, `test_fraction`): with split "train" or "test" every
example (for pairs: the clean half) is kept only if a stable hash of its
underlying problem (the edge set and the goal) falls in that split, a
`test_fraction` share going to "test". Train on "train" and score on "test"
and no problem is shared, whatever the seeds. The default "all" keeps
everything.

Counterfactual families (`answer_pos` is the position predicting the first
path token where the two paths differ; the default metric is the logit
difference between the clean and corrupted tokens there):
- "goal": the same tree, labels and edge order with a different goal whose path
  diverges from the clean one (neither goal is an ancestor of the other).
- "rewire": the same goal, labels and edge order in a different tree: one node
  on the clean path (the goal or an ancestor other than the root) is re-parented
  to a node outside its subtree, so the prompts differ in one token only (the
  parent token of that node's edge) and the path to the goal changes. Depth and
  child limits still hold. It shows how the structure is processed, not only
  how the goal is routed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from mesainterp.errors import ConfigError
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

__all__ = ["GoalDepthDistribution", "TreeInstance", "TreePathTask"]

GoalDepthDistribution = Literal["uniform_depth", "uniform_node"]


@dataclass(frozen=True, kw_only=True)
class TreeInstance:
    """One example: edges (parent, child) in prompt order, root, goal, root-to-goal path."""

    edges: tuple[tuple[int, int], ...]
    root: int
    goal: int
    path: tuple[int, ...]


@dataclass(frozen=True)
class _Tree:
    """Structure in generation order (node 0 is the root) plus the label permutation."""

    parent: tuple[int, ...]  # structural parent, -1 for the root
    depth: tuple[int, ...]
    label: tuple[int, ...]  # structural node -> token label
    edge_order: tuple[int, ...]  # structural children in prompt order


@dataclass(frozen=True, kw_only=True)
class TreePathTask(PathTask):
    """Root-to-goal path in a shuffled-edge-list tree. See the module docstring."""

    name: ClassVar[str] = "tree-path"
    counterfactual_families: ClassVar[tuple[str, ...]] = ("goal", "rewire")

    n_nodes: int = 12
    max_depth: int = 5
    max_children: int | None = 2
    min_goal_depth: int = 1
    goal_depth: GoalDepthDistribution = "uniform_depth"
    split: Split = "all"
    test_fraction: float = 0.1
    root_given: bool = False

    def __post_init__(self) -> None:
        t = self.name
        check_int(t, "n_nodes", self.n_nodes, 2, 200)
        if not isinstance(self.root_given, bool):
            raise ConfigError(f"{t}.root_given", f"got {self.root_given!r}", "true or false")
        check_int(t, "max_depth", self.max_depth, 1, self.n_nodes - 1)
        if self.max_children is not None:
            check_int(t, "max_children", self.max_children, 1, self.n_nodes - 1)
            capacity = sum(self.max_children**d for d in range(self.max_depth + 1))
            if capacity < self.n_nodes:
                raise ConfigError(
                    f"{t}.n_nodes",
                    f"{self.n_nodes} nodes do not fit a tree of depth <= {self.max_depth}"
                    f" with <= {self.max_children} children",
                    f"an int <= {capacity}, or raise max_depth / max_children",
                )
        check_int(t, "min_goal_depth", self.min_goal_depth, 0, self.max_depth)
        check_choice(t, "goal_depth", self.goal_depth, get_args(GoalDepthDistribution))
        check_split(t, self.split, self.test_fraction)

    # ---- vocabulary and layout -------------------------------------------------
    @property
    def comma(self) -> int:
        return self.n_nodes

    @property
    def goal_marker(self) -> int:
        return self.n_nodes + 1

    @property
    def path_marker(self) -> int:
        return self.n_nodes + 2

    @property
    def end(self) -> int:
        return self.n_nodes + 3

    @property
    def pad(self) -> int:
        return self.n_nodes + 4

    @property
    def d_vocab(self) -> int:
        return self.n_nodes + 5

    @property
    def d_vocab_out(self) -> int:
        return self.d_vocab

    @property
    def vocab(self) -> tuple[str, ...]:
        """Display string of every token id."""
        return (*(str(i) for i in range(self.n_nodes)), ",", "|", ":", "END", "PAD")

    @property
    def n_edges(self) -> int:
        return self.n_nodes - 1

    @property
    def prompt_len(self) -> int:
        return 3 * self.n_edges + 3

    @property
    def goal_pos(self) -> int:
        """Position of the goal token in the prompt."""
        return self.prompt_len - 2

    @property
    def max_path_len(self) -> int:
        return self.max_depth + 1

    @property
    def seq_len(self) -> int:
        return self.prompt_len + self.max_path_len + 1

    # ---- generation ------------------------------------------------------------
    def _grow(self, u: Uniforms, spine: int) -> _Tree:
        n, cap = self.n_nodes, self.max_children
        parent = [-1] * n
        depth = [0] * n
        children = [0] * n
        for v in range(1, spine + 1):
            parent[v], depth[v] = v - 1, v
            children[v - 1] += 1
        for v in range(spine + 1, n):
            eligible = [
                w
                for w in range(v)
                if depth[w] < self.max_depth and (cap is None or children[w] < cap)
            ]
            p = u.choice(eligible)
            parent[v], depth[v] = p, depth[p] + 1
            children[p] += 1
        return _Tree(
            parent=tuple(parent),
            depth=tuple(depth),
            label=tuple(u.shuffled(range(n))),
            edge_order=tuple(u.shuffled(range(1, n))),
        )

    def _pick_goal(self, u: Uniforms, tree: _Tree, candidates: list[int]) -> int:
        """A goal among `candidates` under the configured depth distribution."""
        if self.goal_depth == "uniform_node":
            return int(u.choice(candidates))
        depths = sorted({tree.depth[v] for v in candidates})
        d = u.choice(depths)
        return int(u.choice([v for v in candidates if tree.depth[v] == d]))

    def _draw(self, u: Uniforms) -> tuple[_Tree, int]:
        lo = self.min_goal_depth
        if self.goal_depth == "uniform_depth":
            d = lo + u.below(self.max_depth - lo + 1)
            tree = self._grow(u, spine=d)
            return tree, int(u.choice([v for v in range(self.n_nodes) if tree.depth[v] == d]))
        while True:
            tree = self._grow(u, spine=0)
            candidates = [v for v in range(self.n_nodes) if tree.depth[v] >= lo]
            if candidates:
                return tree, self._pick_goal(u, tree, candidates)

    @staticmethod
    def _struct_path(tree: _Tree, goal: int) -> list[int]:
        path = [goal]
        while tree.parent[path[-1]] >= 0:
            path.append(tree.parent[path[-1]])
        return path[::-1]

    def _instance(self, tree: _Tree, goal: int) -> TreeInstance:
        lab = tree.label
        return TreeInstance(
            edges=tuple((lab[tree.parent[c]], lab[c]) for c in tree.edge_order),
            root=lab[0],
            goal=lab[goal],
            path=tuple(lab[v] for v in self._struct_path(tree, goal)),
        )

    def _batch(self, instances: list[TreeInstance]) -> TaskBatch:
        n, p0, md = len(instances), self.prompt_len, self.max_depth
        inputs = np.full((n, self.seq_len), self.pad, dtype=np.int64)
        targets = np.full((n, self.seq_len), IGNORE_INDEX, dtype=np.int64)
        goal = np.empty(n, dtype=np.int64)
        root = np.empty(n, dtype=np.int64)
        depth = np.empty(n, dtype=np.int64)
        path = np.full((n, md + 1), -1, dtype=np.int64)
        ancestors = np.full((n, md), -1, dtype=np.int64)
        parent = np.full((n, self.n_nodes), -1, dtype=np.int64)
        node_depth = np.zeros((n, self.n_nodes), dtype=np.int64)
        on_path = np.zeros((n, self.n_nodes), dtype=bool)
        edge_pos = np.full((n, self.n_nodes), -1, dtype=np.int64)
        for b, inst in enumerate(instances):
            row = inputs[b]
            for e, (pa, ch) in enumerate(inst.edges):
                row[3 * e : 3 * e + 3] = (pa, ch, self.comma)
                parent[b, ch] = pa
                edge_pos[b, ch] = 3 * e
            row[p0 - 3 : p0] = (self.goal_marker, inst.goal, self.path_marker)
            k = len(inst.path)
            row[p0 : p0 + k] = inst.path
            row[p0 + k] = self.end
            # With the root given, the position after ":" holds it as input and the
            # first scored prediction is the node below it.
            first = p0 if self.root_given else p0 - 1
            targets[b, first : p0 + k] = row[first + 1 : p0 + k + 1]
            goal[b], root[b], depth[b] = inst.goal, inst.root, k - 1
            path[b, :k] = inst.path
            ancestors[b, : k - 1] = inst.path[-2::-1]
            on_path[b, list(inst.path)] = True
            for v in range(self.n_nodes):
                d, w = 0, v
                while parent[b, w] >= 0:
                    w, d = parent[b, w], d + 1
                node_depth[b, v] = d
        labels = {
            "goal": goal,
            "root": root,
            "depth": depth,
            "path": path,
            "ancestors": ancestors,
            "parent": parent,
            "node_depth": node_depth,
            "on_path": on_path,
            "edge_pos": edge_pos,
        }
        return TaskBatch(
            inputs=torch.from_numpy(inputs),
            targets=torch.from_numpy(targets),
            prompt_len=p0,
            labels={k: torch.from_numpy(v) for k, v in labels.items()},
            instances=list(instances),
        )

    def sample(self, n: int, *, seed: int) -> TaskBatch:
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        u = Uniforms([seed, 0])
        instances: list[TreeInstance] = []
        while len(instances) < n:
            inst = self._instance(*self._draw(u))
            if self._in_split(inst):
                instances.append(inst)
        return self._batch(instances)

    def _in_split(self, inst: TreeInstance) -> bool:
        return in_split((sorted(inst.edges), inst.goal), self.split, self.test_fraction)

    def counterfactual_pairs(
        self, n: int, *, seed: int, family: str | None = None
    ) -> CounterfactualPair:
        family = pick_family(self, family)
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        if family == "rewire":
            return self._rewire_pairs(n, Uniforms([seed, 2]))
        u = Uniforms([seed, 1])
        clean: list[TreeInstance] = []
        corrupt: list[TreeInstance] = []
        for _ in range(n):
            for _attempt in range(10000):
                tree, goal = self._draw(u)
                on_path = set(self._struct_path(tree, goal))
                candidates = [
                    v
                    for v in range(self.n_nodes)
                    if v not in on_path
                    and tree.depth[v] >= self.min_goal_depth
                    and goal not in self._struct_path(tree, v)
                ]
                if candidates and self._in_split(self._instance(tree, goal)):
                    break
            else:
                raise ConfigError(
                    f"{self.name}.max_children",
                    "no two goals with diverging paths in 10000 trees: the trees are (nearly) chains",
                    "a larger max_children, or more nodes than max_depth + 1",
                )
            clean.append(self._instance(tree, goal))
            corrupt.append(self._instance(tree, self._pick_goal(u, tree, candidates)))
        answer_pos, clean_answer, corrupted_answer = [], [], []
        for c, r in zip(clean, corrupt, strict=True):
            i = next(i for i, (a, b) in enumerate(zip(c.path, r.path, strict=False)) if a != b)
            answer_pos.append(self.prompt_len - 1 + i)
            clean_answer.append(c.path[i])
            corrupted_answer.append(r.path[i])
        return CounterfactualPair(
            family=family,
            clean=self._batch(clean),
            corrupted=self._batch(corrupt),
            answer_pos=torch.tensor(answer_pos, dtype=torch.long),
            clean_answer=torch.tensor(clean_answer, dtype=torch.long),
            corrupted_answer=torch.tensor(corrupted_answer, dtype=torch.long),
        )

    def _rewirings(self, tree: _Tree, goal: int) -> list[tuple[int, int]]:
        """(node, new parent) moves of a non-root path node that keep a valid tree."""
        children = [0] * self.n_nodes
        for v in range(1, self.n_nodes):
            children[tree.parent[v]] += 1
        moves = []
        # How far below each node its subtree reaches: the whole subtree moves with it.
        height = [0] * self.n_nodes
        for v in sorted(range(1, self.n_nodes), key=lambda v: -tree.depth[v]):
            height[tree.parent[v]] = max(height[tree.parent[v]], height[v] + 1)
        for a in self._struct_path(tree, goal)[1:]:
            for q in range(self.n_nodes):
                if q == tree.parent[a] or a in self._struct_path(tree, q):
                    continue  # the same tree, or a cycle (q in a's subtree)
                if self.max_children is not None and children[q] >= self.max_children:
                    continue
                depth = tree.depth[q] + 1  # a's new depth
                goal_depth = depth + tree.depth[goal] - tree.depth[a]
                if depth + height[a] <= self.max_depth and goal_depth >= self.min_goal_depth:
                    moves.append((a, q))
        return moves

    def _rewire_pairs(self, n: int, u: Uniforms) -> CounterfactualPair:
        clean: list[TreeInstance] = []
        corrupt: list[TreeInstance] = []
        for _ in range(n):
            for _attempt in range(10000):
                tree, goal = self._draw(u)
                moves = self._rewirings(tree, goal)
                if moves and self._in_split(self._instance(tree, goal)):
                    break
            else:
                raise ConfigError(
                    f"{self.name}.max_depth",
                    "no node on the path can be re-parented in 10000 trees",
                    "more room: a larger max_depth or max_children",
                )
            a, q = u.choice(moves)
            parent = list(tree.parent)
            parent[a] = q
            depth = [0] * self.n_nodes
            for v in range(1, self.n_nodes):
                w = v
                while parent[w] >= 0:
                    w, depth[v] = parent[w], depth[v] + 1
            moved = _Tree(parent=tuple(parent), depth=tuple(depth), label=tree.label,
                          edge_order=tree.edge_order)  # fmt: skip
            clean.append(self._instance(tree, goal))
            corrupt.append(self._instance(moved, goal))
        pos = [
            self.prompt_len - 1 + _first_diff(c.path, r.path)
            for c, r in zip(clean, corrupt, strict=True)
        ]
        return pair_at_positions("rewire", self._batch(clean), self._batch(corrupt), pos)

    def render(self, tokens: Int[Tensor, " pos"] | list[int]) -> str:
        """Tokens as a readable string, e.g. '3 7 , 7 1 , ... | 1 : 3 7 1 END'."""
        ids = tokens.tolist() if isinstance(tokens, Tensor) else list(tokens)
        return " ".join(self.vocab[i] for i in ids if i != self.pad)


def _first_diff(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """First index where two root-to-goal paths differ (they cannot be prefixes of
    each other: both end at the goal, which appears once)."""
    return next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
