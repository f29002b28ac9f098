"""The edge graph of a transformer: which upstream outputs feed which downstream inputs.

The residual stream is a sum of upstream outputs, so a model is a DAG:

    upstream   (sources)  "embed", "pos_embed", every head "L{l}H{h}", every MLP "M{l}"
    downstream (targets)  every head input "L{l}H{h}.q" / ".k" / ".v", every MLP input
                          "M{l}.in", and "logits"

An edge u -> d exists when u is computed before d reads the residual stream: a head
input at layer l reads everything from layers < l; an MLP at layer l also reads the
heads of layer l; the logits read everything. Node and edge names are plain strings
so circuits save as JSON and read back on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from mesainterp.model.build import ModelShape

__all__ = ["EdgeGraph", "edge_name", "split_edge_name"]

QKV = ("q", "k", "v")


def edge_name(upstream: str, downstream: str) -> str:
    return f"{upstream}->{downstream}"


def split_edge_name(name: str) -> tuple[str, str]:
    upstream, _, downstream = name.partition("->")
    return upstream, downstream


@dataclass(frozen=True, kw_only=True)
class EdgeGraph:
    """Names and layer order of the upstream and downstream nodes of one model shape."""

    n_layers: int
    n_heads: int
    attn_only: bool
    upstream: tuple[str, ...] = field(init=False)
    downstream: tuple[str, ...] = field(init=False)
    # Layer at which each node lives (-1 for embeddings, n_layers for logits).
    up_layer: tuple[int, ...] = field(init=False)
    down_layer: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        up, up_layer = ["embed", "pos_embed"], [-1, -1]
        down: list[str] = []
        down_layer: list[int] = []
        for layer in range(self.n_layers):
            for kind in QKV:
                for head in range(self.n_heads):
                    down.append(f"L{layer}H{head}.{kind}")
                    down_layer.append(layer)
            for head in range(self.n_heads):
                up.append(f"L{layer}H{head}")
                up_layer.append(layer)
            if not self.attn_only:
                down.append(f"M{layer}.in")
                down_layer.append(layer)
                up.append(f"M{layer}")
                up_layer.append(layer)
        down.append("logits")
        down_layer.append(self.n_layers)
        object.__setattr__(self, "upstream", tuple(up))
        object.__setattr__(self, "downstream", tuple(down))
        object.__setattr__(self, "up_layer", tuple(up_layer))
        object.__setattr__(self, "down_layer", tuple(down_layer))

    @classmethod
    def of(cls, shape: ModelShape) -> EdgeGraph:
        return cls(n_layers=shape.n_layers, n_heads=shape.n_heads, attn_only=shape.attn_only)

    @property
    def n_upstream(self) -> int:
        return len(self.upstream)

    @property
    def n_downstream(self) -> int:
        return len(self.downstream)

    def n_before(self, downstream_index: int) -> int:
        """How many upstream nodes (a prefix of `upstream`) feed downstream node i."""
        name = self.downstream[downstream_index]
        layer = self.down_layer[downstream_index]
        if name == "logits":
            return self.n_upstream
        per_layer = self.n_heads + (0 if self.attn_only else 1)
        n = 2 + layer * per_layer
        if name.endswith(".in"):  # an MLP also reads its own layer's heads
            n += self.n_heads
        return n

    def valid_mask(self) -> Tensor:
        """Bool [n_upstream, n_downstream]: which edges exist."""
        mask = torch.zeros(self.n_upstream, self.n_downstream, dtype=torch.bool)
        for j in range(self.n_downstream):
            mask[: self.n_before(j), j] = True
        return mask

    def edges(self) -> list[tuple[str, str]]:
        """Every edge as (upstream, downstream), in (downstream, upstream) order."""
        return [
            (self.upstream[i], self.downstream[j])
            for j in range(self.n_downstream)
            for i in range(self.n_before(j))
        ]

    def up_index(self, name: str) -> int:
        return self.upstream.index(name)

    def down_index(self, name: str) -> int:
        return self.downstream.index(name)

    def mask_of(self, edges: list[tuple[str, str]] | set[tuple[str, str]]) -> Tensor:
        """Bool [n_upstream, n_downstream] with exactly `edges` set."""
        up = {n: i for i, n in enumerate(self.upstream)}
        down = {n: j for j, n in enumerate(self.downstream)}
        mask = torch.zeros(self.n_upstream, self.n_downstream, dtype=torch.bool)
        for u, d in edges:
            mask[up[u], down[d]] = True
        return mask

    def edges_of(self, mask: Tensor) -> list[tuple[str, str]]:
        """The (upstream, downstream) pairs set in a bool mask, in graph order."""
        valid = self.valid_mask() & mask.bool()
        return [
            (self.upstream[i], self.downstream[j])
            for j in range(self.n_downstream)
            for i in range(self.n_upstream)
            if valid[i, j]
        ]

    def upstream_of_downstream(self, name: str) -> str | None:
        """The upstream node whose inputs a downstream node is ("L0H1.q" -> "L0H1")."""
        if name == "logits":
            return None
        return name.rsplit(".", 1)[0]
