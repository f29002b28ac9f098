"""The edge graph of a transformer: which upstream outputs feed which downstream inputs.

The residual stream is a sum of upstream outputs, so a model is a DAG:

    upstream   (sources)  "embed", "pos_embed" (learned positions only), every head
                          "L{l}H{h}", every MLP "M{l}"
    downstream (targets)  every head's query input "L{l}H{h}.q", every key/value head's
                          inputs ("L{l}H{h}.k" / ".v"; under grouped-query attention one
                          per key/value head, "L{l}KV{g}.k" / ".v", read by heads
                          g*r .. g*r+r-1), every MLP input "M{l}.in", and "logits"

An edge u -> d exists when u is computed before d reads the residual stream: a head
input at layer l reads everything from layers < l; an MLP at layer l also reads the
heads of layer l, unless the block is parallel (GPT-NeoX), where it reads the block's
input; the logits read everything. Node and edge names are plain strings so circuits
save as JSON and read back on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Bool, Shaped
from torch import Tensor

from mesainterp.errors import MesaInterpError
from mesainterp.model.build import ModelShape
from mesainterp.shapes import shape_checked

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
    n_kv_heads: int | None = None  # None: one key/value head per query head
    parallel: bool = False
    pos_embed: bool = True
    upstream: tuple[str, ...] = field(init=False)
    downstream: tuple[str, ...] = field(init=False)
    # Layer at which each node lives (-1 for embeddings, n_layers for logits).
    up_layer: tuple[int, ...] = field(init=False)
    down_layer: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        n_kv = self.kv_heads
        if n_kv < 1 or self.n_heads % n_kv:
            raise MesaInterpError(
                f"n_kv_heads: expected a divisor of n_heads={self.n_heads}, got {n_kv}"
            )
        up = ["embed", "pos_embed"] if self.pos_embed else ["embed"]
        up_layer = [-1] * len(up)
        down: list[str] = []
        down_layer: list[int] = []
        for layer in range(self.n_layers):
            for kind in QKV:
                for head in range(self.n_heads if kind == "q" else n_kv):
                    down.append(self.head_input(layer, head, kind))
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
        """The graph of a plain (GPT-2 style) model of this shape."""
        return cls(n_layers=shape.n_layers, n_heads=shape.n_heads, attn_only=shape.attn_only)

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def grouped(self) -> bool:
        """Whether several query heads share each key/value head."""
        return self.kv_heads != self.n_heads

    @property
    def n_embed(self) -> int:
        """Upstream embedding nodes (token, and positions when learned)."""
        return 2 if self.pos_embed else 1

    @property
    def inputs_per_layer(self) -> int:
        """Head inputs of one layer: H queries, then KV keys, then KV values."""
        return self.n_heads + 2 * self.kv_heads

    def head_input(self, layer: int, head: int, kind: str) -> str:
        """Name of a head input; `head` counts key/value heads for k and v."""
        if kind != "q" and self.grouped:
            return f"L{layer}KV{head}.{kind}"
        return f"L{layer}H{head}.{kind}"

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
        n = self.n_embed + layer * per_layer
        if name.endswith(".in") and not self.parallel:  # an MLP reads its layer's heads
            n += self.n_heads
        return n

    @shape_checked
    def valid_mask(self) -> Bool[Tensor, "n_up n_down"]:
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

    @shape_checked
    def mask_of(
        self, edges: list[tuple[str, str]] | set[tuple[str, str]]
    ) -> Bool[Tensor, "n_up n_down"]:
        """Bool [n_upstream, n_downstream] with exactly `edges` set."""
        up = {n: i for i, n in enumerate(self.upstream)}
        down = {n: j for j, n in enumerate(self.downstream)}
        mask = torch.zeros(self.n_upstream, self.n_downstream, dtype=torch.bool)
        for u, d in edges:
            mask[up[u], down[d]] = True
        return mask

    @shape_checked
    def edges_of(self, mask: Shaped[Tensor, "n_up n_down"]) -> list[tuple[str, str]]:
        """The (upstream, downstream) pairs set in a bool mask, in graph order."""
        valid = self.valid_mask() & mask.bool()
        return [
            (self.upstream[i], self.downstream[j])
            for j in range(self.n_downstream)
            for i in range(self.n_upstream)
            if valid[i, j]
        ]

    def owners(self, name: str) -> tuple[str, ...]:
        """The upstream nodes whose input a downstream node is ("L0H1.q" -> ("L0H1",);
        a grouped key/value input -> every query head that reads it; logits -> ())."""
        if name == "logits":
            return ()
        node = name.rpartition(".")[0]
        if "KV" not in node:
            return (node,)
        layer, group = (int(x) for x in node[1:].split("KV"))
        r = self.n_heads // self.kv_heads
        return tuple(f"L{layer}H{h}" for h in range(group * r, (group + 1) * r))

    def upstream_of_downstream(self, name: str) -> str | None:
        """The one upstream node whose input a downstream node is ("L0H1.q" -> "L0H1");
        None for the logits and for a grouped key/value input (see `owners`)."""
        owners = self.owners(name)
        return owners[0] if len(owners) == 1 else None
