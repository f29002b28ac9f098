"""Search-free baselines: cheap per-example features read off the prompt, no search.

A probe result only counts as evidence of search if the model's activations
beat what a linear probe gets from features any non-searching reader has: how
often each node occurs as an edge's tail / head (degree counts), which node is
the goal and which the start (one-hots), the goal's and the start's direct
neighbours (one edge lookup, no chaining) and, on the maze, each cell's
Manhattan distance to the target and to the origin (a distance-to-goal
heuristic that ignores walls).

Each set names the labels it reveals: a test drops the sets that contain its own
target (a goal one-hot is not a baseline for decoding the goal).

`hard_candidates` is the simple heuristic a look-ahead probe must beat the
baselines beyond: a node that is an endpoint of no edge pair (it has no way in
or no way out; on the maze a dead end, one connection) cannot lie strictly
inside a path, so only the other nodes are candidates a heuristic cannot reject.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mesainterp.evidence.profile import EvidenceInputs

__all__ = ["BaselineSet", "edge_table", "hard_candidates", "search_free_baselines"]


@dataclass(frozen=True, kw_only=True)
class BaselineSet:
    """One search-free feature set: name, features [n, d], the labels it reveals."""

    name: str
    features: Float[Tensor, "n d"]
    reveals: frozenset[str]


def edge_table(inputs: EvidenceInputs) -> Int[Tensor, "n edges 2"]:
    """(tail, head) token pairs of every prompt edge slot; padding slots stay as tokens
    >= the node count (callers mask them)."""
    n_edge_tokens = inputs.goal_pos - (1 if inputs.profile.start_label is None else 3)
    slots = n_edge_tokens // 3
    tok = inputs.tokens[:, : 3 * slots].long().reshape(-1, slots, 3)
    return tok[:, :, :2]


def _n_nodes(inputs: EvidenceInputs) -> int:
    attr = inputs.profile.node_attr
    assert attr is not None
    return int(getattr(inputs.task, attr))


def _one_hot(ids: Tensor, k: int) -> Tensor:
    return torch.nn.functional.one_hot(ids.long(), k).double()


def _degrees(inputs: EvidenceInputs) -> tuple[Tensor, Tensor]:
    """(out-degree, in-degree) counts [n, nodes]; undirected tasks count both ends."""
    k = _n_nodes(inputs)
    edges = edge_table(inputs)
    out = torch.zeros(edges.shape[0], k + 1, dtype=torch.float64)
    into = torch.zeros_like(out)
    tail, head = edges[..., 0].clamp(max=k), edges[..., 1].clamp(max=k)  # k = padding bin
    out.scatter_add_(1, tail, torch.ones_like(tail, dtype=torch.float64))
    into.scatter_add_(1, head, torch.ones_like(head, dtype=torch.float64))
    return out[:, :k], into[:, :k]


def _neighbours(inputs: EvidenceInputs, node: Tensor) -> Tensor:
    """[n, nodes]: 1 where the node shares a prompt edge with `node` (one lookup)."""
    k = _n_nodes(inputs)
    edges = edge_table(inputs)
    hit = torch.zeros(edges.shape[0], k + 1, dtype=torch.float64)
    tail, head = edges[..., 0].clamp(max=k), edges[..., 1].clamp(max=k)
    node = node.long()[:, None]
    hit.scatter_add_(1, head, (tail == node).double())
    hit.scatter_add_(1, tail, (head == node).double())
    return (hit[:, :k] > 0).double()


def hard_candidates(inputs: EvidenceInputs) -> Bool[Tensor, "n nodes"]:
    """Nodes a degree heuristic cannot rule out as inner path nodes (see the docstring)."""
    out, into = _degrees(inputs)
    if inputs.task.name == "maze":
        return (out + into) >= 2
    return (out >= 1) & (into >= 1)


def search_free_baselines(inputs: EvidenceInputs) -> list[BaselineSet]:
    """Every search-free feature set of this path task (empty for other tasks)."""
    profile = inputs.profile
    if profile.kind != "path":
        return []
    k = _n_nodes(inputs)
    out, into = _degrees(inputs)
    goal = inputs.tokens[:, inputs.goal_pos].long()
    degrees = torch.cat([out, into], 1)
    sets = [BaselineSet(name="degree counts", features=degrees, reveals=frozenset())]
    start_feats: list[Tensor] = []
    if profile.start_label is not None:
        start = inputs.tokens[:, inputs.goal_pos - 2].long()
        start_feats = [_one_hot(start, k), _neighbours(inputs, start)]
        sets.append(
            BaselineSet(
                name="degrees + start one-hot + start's neighbours",
                features=torch.cat([degrees, *start_feats], 1),
                reveals=frozenset({profile.start_label}),
            )
        )
    goal_feats = [_one_hot(goal, k), _neighbours(inputs, goal)]
    if inputs.task.name == "maze":
        n = int(inputs.task.grid_n)  # type: ignore[attr-defined]
        cells = torch.arange(k)
        row, col = cells // n, cells % n
        goal_feats.append(
            (
                (row[None] - (goal // n)[:, None]).abs() + (col[None] - (goal % n)[:, None]).abs()
            ).double()
        )
    reveals = frozenset({profile.goal_label or "", profile.start_label or ""} - {""})
    sets.append(
        BaselineSet(
            name="degrees + goal/start one-hots + neighbours"
            + (" + Manhattan distances" if inputs.task.name == "maze" else ""),
            features=torch.cat([degrees, *start_feats, *goal_feats], 1),
            reveals=reveals,
        )
    )
    return sets
