"""How well attribution tracks exact patching on a model's head outputs.

For every head (or head x position) site, the attribution estimate
(`node_attribution`, 2 forwards + 1 backward) is set against the exact denoising
patch of that site (`mesainterp.patching.engine.run_sweep`, resample ablation:
patched - corrupted metric, averaged over examples). With `ig_steps`, the estimate is instead
EAP-IG's edge scores summed over each head's outgoing edges (the integrated-gradients
node score; head granularity only, native models only). Reported: Pearson r, Spearman
rho and the overlap of the top-k sites by |effect|, the figures a paper quotes when
it uses attribution in place of patching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from einops import reduce
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.eap import edge_attribution
from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.attribution.nodes import node_attribution
from mesainterp.errors import ConfigError, allowed
from mesainterp.model.build import model_shape
from mesainterp.patching.engine import run_sweep
from mesainterp.patching.metrics import MetricFn
from mesainterp.shapes import ModelInput, shape_checked
from mesainterp.sites.sweeps import head_sites
from mesainterp.stats import pearson, spearman

__all__ = ["Agreement", "attribution_agreement", "pearson", "spearman", "top_k_overlap"]

Granularity = Literal["head", "head_pos"]
GRANULARITIES: tuple[str, ...] = ("head", "head_pos")


@shape_checked
def top_k_overlap(a: Float[Tensor, " sites"], b: Float[Tensor, " sites"], k: int) -> float:
    """|top-k of |a|  ∩  top-k of |b|| / k (ties broken by site order)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= a.shape[0]:
        raise ConfigError("k", f"expected an int in [1, {a.shape[0]}], got {k!r}")
    top_a = set(torch.argsort(-a.abs(), stable=True)[:k].tolist())
    top_b = set(torch.argsort(-b.abs(), stable=True)[:k].tolist())
    return len(top_a & top_b) / k


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """Attribution vs exact patching over `n_sites` head sites."""

    granularity: str
    estimate: str  # "gradient" or "eap-ig (n steps)"
    n_sites: int
    k: int
    pearson: float
    spearman: float
    top_k_overlap: float
    attribution: Tensor  # [n_sites] mean attribution score
    exact: Tensor  # [n_sites] mean exact effect (patched - corrupted)
    labels: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "granularity": self.granularity,
            "estimate": self.estimate,
            "n_sites": self.n_sites,
            "k": self.k,
            "pearson": self.pearson,
            "spearman": self.spearman,
            "top_k_overlap": self.top_k_overlap,
        }


@shape_checked
def attribution_agreement(
    model: TransformerBridge,
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: MetricFn,
    batch: Any = None,
    granularity: Granularity = "head",
    k: int | None = None,
    ig_steps: int | None = None,
) -> Agreement:
    """Attribution vs exact patching of every head output (see the module docstring).

    granularity: "head" (one site per head, all positions) or "head_pos" (per position).
    k:           top-k size (default: a tenth of the sites, at least 3).
    ig_steps:    score heads by EAP-IG with this many steps instead of the gradient.
    """
    if granularity not in GRANULARITIES:
        raise ConfigError("granularity", f"got {granularity!r}", allowed(GRANULARITIES))
    sites = head_sites(
        model_shape(model), seq_len=int(clean.shape[1]), kind="z", by_pos=granularity == "head_pos"
    )
    kk = k if k is not None else min(len(sites), max(3, len(sites) // 10))
    if ig_steps is None:
        estimate = "gradient"
        attr = node_attribution(
            model, sites, clean=clean, corrupted=corrupted, metric=metric, batch=batch
        ).scores
    else:
        if granularity != "head":
            raise ConfigError(
                "ig_steps", "EAP-IG scores heads, not positions", "granularity='head'"
            )
        estimate = f"eap-ig, {ig_steps} step" + ("s" if ig_steps != 1 else "")
        ef = EdgeForward(model)
        edges = edge_attribution(
            model, clean=clean, corrupted=corrupted, metric=metric, batch=batch,
            method="eap-ig", ig_steps=ig_steps, forward=ef,
        )  # fmt: skip
        # Patching a head's output patches it into every input that reads it.
        attr = torch.stack(
            [edges.scores[ef.graph.up_index(f"L{s.layer}H{s.head}")].sum() for s in sites]
        )
    sweep = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric, batch=batch)
    exact = reduce((sweep.patched - sweep.corrupted).float(), "sites batch -> sites", "mean")
    return Agreement(
        granularity=granularity,
        estimate=estimate,
        n_sites=len(sites),
        k=kk,
        pearson=pearson(attr, exact),
        spearman=spearman(attr, exact),
        top_k_overlap=top_k_overlap(attr, exact, kk),
        attribution=attr,
        exact=exact,
        labels=[s.label() for s in sites],
    )
