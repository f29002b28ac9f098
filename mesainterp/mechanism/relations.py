"""Relations and query roles: where attention goes and where it comes from, in a task's terms.

A `Relation` is a small named function from (batch, example, query position) to the
key positions it names: "the previous token", "the goal token", "the edge into the
current node". A `QueryRole` names query positions per example: "the goal token",
"answer step 2", ":". Both are plain values, so users add their own next to the
built-in ones (`task_relations`, `prompt_relations`).

`relation_masks` turns one query role and many relations into the 0/1 key masks the
attention statistics multiply with. It hands the functions the batch with its inputs
and labels as numpy arrays (indexing them is ~50x cheaper than indexing tensors, and
the functions run once per example, query and relation); write them to index, as
`int(batch.inputs[b, q])`, in a way both accept. Keys after the query are dropped (causal
attention cannot reach them), and a relation with no key at a query leaves that
query undefined for it, so "the edge into the goal's 3rd ancestor" is averaged only
over examples whose goal has one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.tasks.base import TaskBatch

__all__ = [
    "KeyFn",
    "QueryFn",
    "QueryRole",
    "Relation",
    "RoleMasks",
    "prefix",
    "previous_token",
    "relation_masks",
    "same_token",
    "self_token",
]

# (batch, example index, query position) -> key positions
KeyFn = Callable[[TaskBatch, int, int], Iterable[int]]
# (batch, example index) -> query positions
QueryFn = Callable[[TaskBatch, int], Iterable[int]]


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{kind}.name", f"expected a non-empty string, got {name!r}")


@dataclass(frozen=True)
class Relation:
    """A named map from (batch, example, query position) to key positions.

    >>> batch = TaskBatch(inputs=torch.tensor([[4, 5, 6]]), targets=torch.zeros(1, 3,
    ...     dtype=torch.long), prompt_len=3, labels={})
    >>> sorted(previous_token().keys(batch, 0, 2))
    [1]
    """

    name: str
    keys: KeyFn
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("relation", self.name)
        if not callable(self.keys):
            raise ConfigError(f"relation {self.name!r}.keys", "expected a callable")


@dataclass(frozen=True)
class QueryRole:
    """A named set of query positions per example (empty where the role is absent)."""

    name: str
    positions: QueryFn
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("query role", self.name)
        if not callable(self.positions):
            raise ConfigError(f"query role {self.name!r}.positions", "expected a callable")


def previous_token() -> Relation:
    return Relation("previous token", lambda batch, b, q: [q - 1] if q > 0 else [])


def self_token() -> Relation:
    return Relation("self", lambda batch, b, q: [q])


def prefix() -> Relation:
    """Every position up to the query: uniform attention puts all its mass here."""
    return Relation("prefix", lambda batch, b, q: range(q + 1), "every key the query can see")


def same_token() -> Relation:
    """Earlier positions holding the query's own token (induction-style lookups)."""

    def keys(batch: TaskBatch, b: int, q: int) -> list[int]:
        row = batch.inputs[b]
        return [k for k in range(q) if int(row[k]) == int(row[q])]

    return Relation("same token", keys)


@dataclass(frozen=True)
class RoleMasks:
    """One query role against many relations, for one batch.

    query:   [batch, pos] the role's query positions.
    keys:    [relation, batch, pos (query), pos (key)] 0/1 key masks.
    defined: [relation, batch, pos] queries of the role where the relation names a key.
    """

    query: Bool[Tensor, "batch pos"]
    keys: Bool[Tensor, "rel batch q k"]
    defined: Bool[Tensor, "rel batch q"]


def relation_masks(batch: TaskBatch, role: QueryRole, relations: Sequence[Relation]) -> RoleMasks:
    """The key masks of `relations` at the query positions of `role` (see the module doc)."""
    n, seq = batch.batch_size, batch.seq_len
    batch = dataclasses.replace(
        batch,
        inputs=batch.inputs.cpu().numpy(),  # type: ignore[arg-type]
        labels={k: v.cpu().numpy() for k, v in batch.labels.items()},  # type: ignore[misc]
    )
    query = torch.zeros(n, seq, dtype=torch.bool)
    keys = torch.zeros(len(relations), n, seq, seq, dtype=torch.bool)
    for b in range(n):
        for q in role.positions(batch, b):
            q = int(q)
            if not 0 <= q < seq:
                raise ConfigError(
                    f"query role {role.name!r}",
                    f"position {q} in example {b}",
                    f"ints in [0, {seq})",
                )
            query[b, q] = True
            for r, relation in enumerate(relations):
                for k in relation.keys(batch, b, q):
                    if 0 <= int(k) <= q:
                        keys[r, b, q, int(k)] = True
    defined = keys.any(dim=-1) & query.unsqueeze(0)
    return RoleMasks(query=query, keys=keys, defined=defined)
