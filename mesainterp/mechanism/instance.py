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
from mesainterp.mechanism.structural import position_names
from mesainterp.tasks.base import Task, TaskBatch

__all__ = ["attention_view", "head_attention_panels", "position_labels"]


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


def position_labels(task: Task, batch: TaskBatch, example: int) -> list[str]:
    """One label per position of `example`: its token, prefixed by its role where the
    position has one ("goal 7", "answer step 1 3", "edge 2 child 5")."""
    vocab = list(getattr(task, "vocab", ()))
    names = position_names(task, batch)
    labels = []
    for name, token in zip(names, batch.inputs[example].tolist(), strict=True):
        text = vocab[token] if 0 <= token < len(vocab) else str(token)
        labels.append(text if name in ("", text) else f"{name} {text}")
    return labels


@torch.no_grad()
def attention_view(
    model: TransformerBridge, task: Task, batch: TaskBatch, example: int, heads: Sequence[str]
) -> dict[str, object]:
    """The attention of `heads` ("L1H0", ...) on one example, in the report's attention
    format: {"tokens", "attention" [head][query][key], "head_names"}, tokens labelled
    with their roles."""
    if not 0 <= example < batch.batch_size:
        raise ConfigError("example", f"{example} is not in the batch", f"0..{batch.batch_size - 1}")
    _, patterns = attention_patterns(model, batch.inputs[example : example + 1])
    picked = []
    for name in heads:
        layer, head = (int(part) for part in name.removeprefix("L").split("H"))
        picked.append(patterns[layer, 0, head])
    return {
        "tokens": position_labels(task, batch, example),
        "attention": torch.stack(picked).tolist() if picked else [],
        "head_names": list(heads),
    }
