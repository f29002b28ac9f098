"""Attention mass of every head on every relation at one query role, with bootstrap CIs.

For example i, head h, relation r: the attention weight h puts on r's keys, averaged
over the role's query positions in i where r names a key. The mean over examples
gets a percentile bootstrap interval from `mesainterp.stats.bootstrap`, all heads
and relations from one set of resamples. `chance` is the mass uniform attention
over the visible keys would put on the same keys: the level a head that ignores
the relation reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.mechanism.relations import RoleMasks
from mesainterp.patching.engine import capture
from mesainterp.stats import Statistic, bootstrap

__all__ = ["RoleMass", "attention_patterns", "grouped", "role_mass"]


def attention_patterns(
    model: TransformerBridge, inputs: Tensor
) -> tuple[Tensor, Float[Tensor, "layer batch head q k"]]:
    """Logits and every layer's attention pattern, from one forward caching only them."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(int(model.cfg.n_layers))]
    logits, store = capture(model, inputs, names)
    return logits, torch.stack([store[name].float().cpu() for name in names])


@dataclass(frozen=True)
class RoleMass:
    """Per relation, layer and head: mean mass, its CI, chance level, examples counted."""

    mean: Float[Tensor, "rel layer head"]
    low: Float[Tensor, "rel layer head"]
    high: Float[Tensor, "rel layer head"]
    chance: Float[Tensor, " rel"]
    n: Tensor  # [rel] examples where the relation is defined at this role
    per_example: Float[Tensor, "rel layer head batch"]  # NaN where undefined


def _weighted_means(values: Tensor, weights: Tensor) -> Statistic:
    """statistic(idx) = the resampled mean of each row of `values` [m, n] over the examples
    each row is defined on (`weights` [m, n], 0/1), via resample counts and one matmul."""

    def statistic(idx: Tensor) -> Tensor:
        counts = torch.zeros(idx.shape[0], values.shape[-1], dtype=torch.float64)
        counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
        return (values @ counts.T) / (weights @ counts.T)

    return statistic


def role_mass(
    patterns: Float[Tensor, "layer batch head q k"],
    masks: RoleMasks,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RoleMass:
    """Mass of every head on every relation of `masks` (see the module docstring)."""
    keys = masks.keys.float()
    defined = masks.defined.float()  # [rel, b, q]
    per_query = torch.einsum("lbhqk,rbqk->rlhbq", patterns, keys)
    count = defined.sum(-1)  # [rel, b]
    per_example = (per_query * defined[:, None, None]).sum(-1) / count[:, None, None].clamp(min=1)
    n_rel, n_layer, n_head, n = per_example.shape
    has = (count > 0).double()  # [rel, b]
    flat = (per_example.double() * has[:, None, None]).reshape(-1, n)
    weights = has[:, None, None].expand(n_rel, n_layer, n_head, n).reshape(-1, n)
    mean = flat.sum(-1) / weights.sum(-1)
    low, high = bootstrap(_weighted_means(flat, weights), n, n_boot=n_boot,
                          confidence=confidence, seed=seed)  # fmt: skip
    visible = torch.arange(patterns.shape[-1], dtype=torch.float32) + 1  # keys <= q
    uniform = (keys.sum(-1) / visible) * defined
    chance = (uniform.sum(-1) / count.clamp(min=1)).sum(-1) / has.sum(-1).clamp(min=1)
    shape = (n_rel, n_layer, n_head)
    return RoleMass(
        mean=mean.reshape(shape).float(),
        low=low.reshape(shape).float(),
        high=high.reshape(shape).float(),
        chance=chance.float(),
        n=has.sum(-1).long(),
        per_example=per_example.masked_fill(~(count > 0)[:, None, None], float("nan")),
    )


def grouped(masks: RoleMasks, names: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Relations that name the same keys at every query of the role, merged ("goal =
    previous token"); relations defined nowhere at the role are left out."""
    at_role = masks.keys & masks.query[None, :, :, None]
    groups: list[tuple[str, list[int]]] = []
    for r in range(len(names)):
        if not bool(masks.defined[r].any()):
            continue
        for i, (label, members) in enumerate(groups):
            if torch.equal(at_role[members[0]], at_role[r]):
                groups[i] = (f"{label} = {names[r]}", [*members, r])
                break
        else:
            groups.append((names[r], [r]))
    return groups
