"""What the task overlays show, computed from a model: its greedy path, a head's
attention from the answer position, and the goal a probe decodes at each layer.

The numbers are computed here; `mesainterp.viz` only draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError
from mesainterp.patching.hooks import hook_context
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.probes.linear import fit_logistic, standardize
from mesainterp.tasks.base import TaskBatch
from mesainterp.tasks.decode import greedy_decode
from mesainterp.viz.tree import attention_to_nodes

__all__ = ["OverlayData", "decoded_goal_by_layer", "head_attention", "model_paths", "overlay_data"]


@dataclass(frozen=True, kw_only=True)
class OverlayData:
    """Everything the overlay figures of one example need, in the task's node ids."""

    instance: Any
    model_path: list[int]
    head: tuple[int, int]
    attention: dict[int, float]
    decoded_goal: dict[str, dict[int, float]]


def model_paths(model: TransformerBridge, batch: TaskBatch, *, n_nodes: int) -> list[list[int]]:
    """The path each example's greedy continuation spells, up to the first non-node token."""
    tokens = greedy_decode(model, batch)
    paths = []
    for row in tokens[:, batch.prompt_len :].tolist():
        path = []
        for token in row:
            if token >= n_nodes:
                break
            path.append(int(token))
        paths.append(path)
    return paths


@torch.no_grad()
def head_attention(
    model: TransformerBridge, tokens: torch.Tensor, *, layer: int, head: int, query: int
) -> torch.Tensor:
    """One head's attention row [key] from position `query` of a single example."""
    captured: dict[str, torch.Tensor] = {}

    def keep(pattern: torch.Tensor, hook: Any) -> None:
        captured["pattern"] = pattern[0, head, query].detach().clone()

    with hook_context(model, fwd=[(f"blocks.{layer}.attn.hook_pattern", keep)]):
        model(tokens[:1])
    return captured["pattern"]


def decoded_goal_by_layer(
    data: ActivationDataset, example: torch.Tensor, *, target: str = "goal", C: float = 1.0
) -> dict[str, dict[int, float]]:
    """Fit one goal probe per site of `data` and return, per layer, the probability
    it gives each node for `example` (features [sites, d] of one held-out example)."""
    if target not in data.labels:
        raise ConfigError("target", f"no label {target!r}", ", ".join(sorted(data.labels)))
    labels = data.labels[target].long()
    n_classes = int(labels.max()) + 1
    scaler = standardize(data.features)
    probe = fit_logistic(scaler(data.features), labels, C=C, n_classes=n_classes)
    logits = probe.decision(scaler(example[:, None, :]))[:, 0, :]
    probabilities = torch.softmax(logits.float(), dim=-1)
    panels: dict[str, dict[int, float]] = {}
    for site, row in zip(data.sites, probabilities, strict=True):
        panels[f"layer {site.layer}"] = {node: float(p) for node, p in enumerate(row.tolist())}
    return panels


def overlay_data(
    model: TransformerBridge,
    batch: TaskBatch,
    data: ActivationDataset,
    example_features: torch.Tensor,
    *,
    head: tuple[int, int],
    n_nodes: int,
) -> OverlayData:
    """The overlay of the first example of `batch`: model path, `head`'s attention
    from the first answer position, and the probe-decoded goal per layer."""
    layer, head_index = head
    query = batch.prompt_len - 1
    pattern = head_attention(model, batch.inputs, layer=layer, head=head_index, query=query)
    tokens = batch.inputs[0, : query + 1].tolist()
    position_nodes = [t if t < n_nodes else None for t in tokens]
    attention = attention_to_nodes(pattern[: query + 1].numpy(), position_nodes)
    return OverlayData(
        instance=batch.instances[0],
        model_path=model_paths(model, batch, n_nodes=n_nodes)[0],
        head=head,
        attention={int(str(k)): float(v) for k, v in attention.items()},
        decoded_goal=decoded_goal_by_layer(data, example_features),
    )
