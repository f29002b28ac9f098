"""Where the heads that matter attend, on one task instance (tree-path).

For each supported patching claim of a card (a head whose ablation at a query role
lowers the answers), the head's attention at that role's position in one example,
summed per node: a key position holding an edge's child token counts for that
child (the edge into it), a node token elsewhere counts for itself. The result is
a panel per (role, head), ready for `viz.tree.tree_small_multiples` on the
example's own tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError
from mesainterp.mechanism.attention import attention_patterns
from mesainterp.mechanism.claims import Claim
from mesainterp.mechanism.relations import QueryRole
from mesainterp.tasks.base import TaskBatch

__all__ = ["head_attention_panels"]


def _key_nodes(batch: TaskBatch, example: int, n_nodes: int) -> list[int | None]:
    """The node each key position stands for: edges' tokens for their child."""
    tokens = batch.inputs[example].tolist()
    out: list[int | None] = [t if t < n_nodes else None for t in tokens]
    for e in range(len(batch.instances[example].edges)):
        child = tokens[3 * e + 1]
        out[3 * e] = child  # the parent token of the edge into `child`
        out[3 * e + 1] = child
    return out


@torch.no_grad()
def head_attention_panels(
    model: TransformerBridge, batch: TaskBatch, example: int, claims: Sequence[Claim],
    roles: Sequence[QueryRole], n_nodes: int,
) -> dict[str, dict[int, float]]:  # fmt: skip
    """Panel "role: head" -> attention mass per node, for each supported patching claim
    at a role that has a position in `example` (see the module docstring)."""
    if not 0 <= example < batch.batch_size:
        raise ConfigError("example", f"{example} is not in the batch", f"0..{batch.batch_size - 1}")
    by_name = {r.name: r for r in roles}
    _, patterns = attention_patterns(model, batch.inputs[example : example + 1])
    keys = _key_nodes(batch, example, n_nodes)
    panels: dict[str, dict[int, float]] = {}
    for c in claims:
        if c.kind != "patching" or c.status != "supported" or c.query_role not in by_name:
            continue
        where = list(by_name[c.query_role].positions(batch, example))
        if not where or c.layer is None:
            continue
        head = int(c.head.split("H")[1])
        weights = patterns[c.layer, 0, head, where[0]]
        mass: dict[int, float] = {}
        for node, w in zip(keys, weights.tolist(), strict=True):
            if node is not None:
                mass[node] = mass.get(node, 0.0) + float(w)
        panels[f"{c.query_role}: {c.head}"] = mass
    return panels
