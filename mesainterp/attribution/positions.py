"""Edges resolved per position or per token role.

`positions` picks the granularity of edge methods (EAP, EAP-IG, ACDC, faithfulness):

    "all"    one node per component over every position (the plain `EdgeGraph`)
    "each"   one node per component and position: "L1H0@3", "L1H0.v@3", "logits@5"
    roles    {name: position(s)}: one node per component and role, "L1H0@goal". A role
             is one position per example (a list, a tensor, or one int for every
             example; negative ints count from the end). Positions no role names form
             the role "other" (always present, maybe empty). A task's roles ("goal",
             "answer step k", ...) come from `mesainterp.tasks.task_roles`; a user's
             prompts name theirs (`PromptPairs.roles`).

The edge set. The residual stream at position p is the sum of the upstream outputs at
p, so every input read at p (a head's query, key or value, an MLP's input, the logits)
reads exactly the upstream outputs at p. The edges are therefore

    u@g -> d@g      for every edge u -> d of the plain graph and every group g

and nothing else: an edge never joins two groups. Attention is the one place where
information crosses positions, and it does so inside a head: head h's key and value
at position p are read by its outputs at every position q >= p, its query at q only by
its output at q. A path from a sender at p to a receiver at a later q is therefore

    u@p -> h.k@p / h.v@p  (an edge)   then   h.k/v@p => h@q, q >= p  (inside head h)

so the key/value receiver of a cross-position edge is named by the key position p.
Position-aware formulations that follow the query instead (e.g. Haklay et al. 2025)
give such a path one edge u@p -> h@q per query q >= p; here the edge u@p -> h.v@p is
the union of those, and ablating it changes what every query q >= p reads from p.
Splitting it by query would need one key and value tensor per query position.

Scores. The EAP score of u@g -> d@g is the plain score's sum restricted to g's
positions: (out_u(clean) - out_u(corrupted)) . dM/dx_d summed over the examples'
positions in g, so the scores of every group of an edge sum to its plain score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mesainterp.attribution.graph import EdgeGraph
from mesainterp.errors import ConfigError
from mesainterp.shapes import shape_checked

__all__ = [
    "GRANULARITIES",
    "OTHER",
    "PositionGroups",
    "PositionalEdgeScores",
    "PositionalGraph",
    "Positions",
    "at",
    "grouped_scores",
    "position_groups",
    "split_at",
]

Positions = Literal["all", "each"] | Mapping[str, Any]
GRANULARITIES = ("all", "each", "roles")
# The role of the positions that no named role covers.
OTHER = "other"


def at(node: str, label: str) -> str:
    """A node at one group: at("L1H0.v", "goal") == "L1H0.v@goal"."""
    return f"{node}@{label}"


def split_at(name: str) -> tuple[str, str | None]:
    """(node, group label) of a name; the label is None for a position-agnostic name."""
    node, sep, label = name.partition("@")
    return node, (label if sep else None)


@dataclass(frozen=True, kw_only=True)
class PositionGroups:
    """Which group every example's position belongs to.

    granularity: "each" or "roles" ("all" is one group, "all").
    labels:      group names, in order ("0", "1", ... for "each").
    index:       long [batch, pos], values in 0 .. len(labels) - 1.
    """

    granularity: str
    labels: tuple[str, ...]
    index: Int[Tensor, "batch pos"]

    @property
    def spec(self) -> dict[str, Any]:
        """The JSON description a circuit keeps (`Circuit.positions`)."""
        return {"granularity": self.granularity, "labels": list(self.labels)}


def position_groups(positions: Positions, *, batch: int, seq: int) -> PositionGroups:
    """The groups of `positions` ("all", "each" or a roles mapping) for inputs of this shape."""
    if isinstance(positions, str):
        if positions == "all":
            return PositionGroups(
                granularity="all", labels=("all",), index=torch.zeros(batch, seq, dtype=torch.long)
            )
        if positions == "each":
            index = torch.arange(seq).expand(batch, seq).clone()
            return PositionGroups(
                granularity="each", labels=tuple(str(p) for p in range(seq)), index=index
            )
        raise ConfigError("positions", f"got {positions!r}", "'all', 'each' or {role: positions}")
    if not isinstance(positions, Mapping) or not positions:
        raise ConfigError(
            "positions", f"got {positions!r}", "'all', 'each' or a non-empty {role: positions}"
        )
    index = torch.full((batch, seq), -1, dtype=torch.long)
    labels: list[str] = []
    rows = torch.arange(batch)
    for g, (name, where) in enumerate(positions.items()):
        if not isinstance(name, str) or not name or "@" in name or name == OTHER:
            raise ConfigError(
                "positions", f"role name {name!r}", f"a non-empty string without '@', not {OTHER!r}"
            )
        pos = _role_positions(name, where, batch=batch, seq=seq)
        taken = index[rows, pos] >= 0
        if taken.any():
            b = int(torch.nonzero(taken)[0])
            other = labels[int(index[b, pos[b]])]
            raise ConfigError(
                f"positions.{name}",
                f"example {b} position {int(pos[b])} is also role {other!r}",
                "roles at distinct positions in every example",
            )
        index[rows, pos] = g
        labels.append(name)
    # Always present (maybe empty), so every slice of a dataset has the same groups.
    index[index < 0] = len(labels)
    labels.append(OTHER)
    return PositionGroups(granularity="roles", labels=tuple(labels), index=index)


def _role_positions(name: str, where: Any, *, batch: int, seq: int) -> Tensor:
    if isinstance(where, int) and not isinstance(where, bool):
        pos = torch.full((batch,), where, dtype=torch.long)
    else:
        try:
            pos = torch.as_tensor(where).long().flatten()
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(
                f"positions.{name}", f"got {where!r}", "an int or one per example"
            ) from None
        if isinstance(where, Tensor) and where.is_floating_point():
            raise ConfigError(f"positions.{name}", "got float positions", "ints")
        if pos.shape[0] != batch:
            raise ConfigError(
                f"positions.{name}", f"{pos.shape[0]} positions for {batch} examples",
                "one position per example, or one int for all",
            )  # fmt: skip
    if ((pos < -seq) | (pos >= seq)).any():
        raise ConfigError(f"positions.{name}", f"got {pos.tolist()}", f"ints in [{-seq}, {seq})")
    return pos % seq


@dataclass(frozen=True)
class PositionalGraph:
    """The plain graph's edges, each once per group (see the module docstring)."""

    base: EdgeGraph
    granularity: str
    labels: tuple[str, ...]
    _group: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_group", {label: g for g, label in enumerate(self.labels)})

    @classmethod
    def of(cls, base: EdgeGraph, groups: PositionGroups) -> PositionalGraph:
        return cls(base, groups.granularity, groups.labels)

    @property
    def spec(self) -> dict[str, Any]:
        return {"granularity": self.granularity, "labels": list(self.labels)}

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    @shape_checked
    def valid_mask(self) -> Bool[Tensor, "n_up n_down groups"]:
        """Bool [n_upstream, n_downstream, n_groups]: which edges exist."""
        return self.base.valid_mask().unsqueeze(-1).expand(-1, -1, self.n_groups).clone()

    def edges(self) -> list[tuple[str, str]]:
        """Every edge as (u@g, d@g), by downstream node, then group, then upstream node."""
        return [
            (at(u, label), at(d, label))
            for j, d in enumerate(self.base.downstream)
            for label in self.labels
            for u in self.base.upstream[: self.base.n_before(j)]
        ]

    def index(self, edge: tuple[str, str]) -> tuple[int, int, int]:
        """(upstream, downstream, group) indices of a positional edge; refuses any other."""
        (u, gu), (d, gd) = split_at(edge[0]), split_at(edge[1])
        g = self.base
        if gu is None or gu != gd or gu not in self._group:
            raise ConfigError(
                "edge", f"{edge} is not an edge of this graph",
                f"(u@g, d@g) with the same group g in {', '.join(self.labels)}",
            )  # fmt: skip
        if u not in g.upstream or d not in g.downstream:
            raise ConfigError("edge", f"{edge} is not an edge of this model's graph")
        return g.up_index(u), g.down_index(d), self._group[gu]

    @shape_checked
    def mask_of(
        self, edges: Sequence[tuple[str, str]] | set[tuple[str, str]]
    ) -> Bool[Tensor, "n_up n_down groups"]:
        """Bool [n_upstream, n_downstream, n_groups] with exactly `edges` set."""
        mask = torch.zeros(self.base.n_upstream, self.base.n_downstream, self.n_groups,
                           dtype=torch.bool)  # fmt: skip
        for edge in edges:
            mask[self.index(edge)] = True
        return mask

    def owners(self, name: str) -> tuple[str, ...]:
        """The upstream nodes that read a downstream input (for pruning dangling edges):
        a query or MLP input at g is read by its node at g; a key or value input at
        position p by its head at every position q >= p ("each"), or at every role
        (roles: their order may differ between examples)."""
        node, label = split_at(name)
        heads = self.base.owners(node)
        if label is None or not heads:
            return ()
        if not node.endswith((".k", ".v")):
            return tuple(at(h, label) for h in heads)
        later = self.labels
        if self.granularity == "each":
            later = self.labels[self._group[label] :]
        return tuple(at(h, q) for h in heads for q in later)


@dataclass(frozen=True, kw_only=True)
class PositionalEdgeScores:
    """Attribution score of every edge at every group.

    scores:      [n_upstream, n_downstream, n_groups] mean over examples.
    per_example: [n_upstream, n_downstream, n_groups, batch].
    """

    graph: PositionalGraph
    scores: Tensor
    per_example: Tensor
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[tuple[str, str], float]:
        """{(u@g, d@g): score} for every existing edge."""
        s = self.scores
        return {e: float(s[self.graph.index(e)]) for e in self.graph.edges()}

    def ranked(self) -> list[tuple[tuple[str, str], float]]:
        """Edges by decreasing |score| (ties in graph order)."""
        return sorted(self.as_dict().items(), key=lambda item: -abs(item[1]))

    @shape_checked
    def total(self) -> Float[Tensor, "n_up n_down"]:
        """The scores summed over groups: the position-agnostic scores."""
        return self.scores.sum(dim=-1)


def grouped_scores(
    diffs: Float[Tensor, "n_up batch pos d_model"],
    grads: Float[Tensor, "n_down batch pos d_model"],
    index: Int[Tensor, "batch pos"],
    n_groups: int,
) -> Float[Tensor, "n_up n_down n_groups batch"]:
    """Per example, sum over each group's positions of diffs . grads, for every edge."""
    n_up, batch, seq, d_model = diffs.shape
    # One batched matmul per (example, position), then a sum into each position's group.
    left = diffs.permute(1, 2, 0, 3).reshape(batch * seq, n_up, d_model)
    right = grads.permute(1, 2, 3, 0).reshape(batch * seq, d_model, grads.shape[0])
    per_pos = torch.bmm(left, right).view(batch, seq, n_up, -1)
    onehot = torch.nn.functional.one_hot(index.to(diffs.device), n_groups).to(diffs.dtype)
    return torch.einsum("bpuj,bpg->ujgb", per_pos, onehot)
