"""Attribution patching for nodes: every site scored from 2 forwards + 1 backward.

    score(site) = (a_clean - a_corrupted) . dM/da |corrupted

summed over the site's slice (one head, one position, ...). It approximates what
exact denoising patching of that site (`mesainterp.patching.engine.run_sweep` with
resample ablation) measures as patched - corrupted, per example. Runs on any bridge:
the activations are read and the gradients taken through `hook_context`, by adding a
zero tensor that requires grad to each hooked activation (so the bridge's own
reshaping of q/k/v/z still applies and no parameter's `.grad` is touched).

`qk_fix` and `grad_drop` are AtP*'s fixes for saturated attention and for cancelling
effects (`mesainterp.attribution.atp_star`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.atp_star import QK_KINDS, QKFix, check_flags, combine_grad_drop
from mesainterp.attribution.atp_star import grad_drop_hooks as drop_hooks
from mesainterp.attribution.eap import _metric_sum
from mesainterp.errors import MesaInterpError
from mesainterp.model.build import model_shape
from mesainterp.model.placement import to_model
from mesainterp.patching.engine import capture, check_pair_shapes
from mesainterp.patching.hooks import hook_context
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.shapes import ModelInput, shape_checked
from mesainterp.sites.site import Site
from mesainterp.sites.sweeps import unique_hook_names, validate_sites

__all__ = ["NodeScores", "node_attribution", "site_slice_sum"]


@dataclass(frozen=True, kw_only=True)
class NodeScores:
    """Per-site attribution: `per_example` [n_sites, batch]; `scores` its mean."""

    sites: list[Site]
    per_example: Tensor

    @property
    def scores(self) -> Tensor:
        return self.per_example.mean(dim=1)

    def as_dict(self) -> dict[str, float]:
        return {s.label(): float(v) for s, v in zip(self.sites, self.scores, strict=True)}


@shape_checked
def site_slice_sum(site: Site, values: Float[Tensor, " batch *act"]) -> Float[Tensor, " batch"]:
    """Sum of `values` (the site's hook activation layout) over the site's slice, per example."""
    if site.kind == "pattern":
        part = values[:, site.head]  # [b, q, k]
        part = part if site.pos is None else part[:, site.pos]
    elif site.head is not None:
        part = values[:, :, site.head] if site.pos is None else values[:, site.pos, site.head]
    else:
        part = values if site.pos is None else values[:, site.pos]
    return part.reshape(part.shape[0], -1).sum(dim=1)


@shape_checked
def node_attribution(
    model: TransformerBridge,
    sites: Sequence[Site],
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    batch: Any = None,
    qk_fix: bool = False,
    grad_drop: bool = False,
) -> NodeScores:
    """Attribution score of every site (see the module docstring).

    qk_fix:    score q and k sites from the exact attention pattern (AtP*'s QK fix).
    grad_drop: GradDrop: mean |score| over runs that each drop one layer's gradient
               (scores become magnitudes). Both together are AtP*; see
               `mesainterp.attribution.atp_star`.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
    ...     metric=pairs.default_metric(), batch=pair.clean)
    >>> heads = mesainterp.named_sites("heads", mesainterp.model_shape(model))
    >>> scores = mesainterp.node_attribution(model, heads, **inputs)
    >>> scores.per_example.shape  # sites, examples
    torch.Size([2, 4])
    >>> {site: round(value, 2) for site, value in scores.as_dict().items()}
    {'L0H0 z': 0.18, 'L0H1 z': 0.07}
    """
    metric = as_batch_metric(metric)  # metric(logits) or metric(logits, batch)
    check_pair_shapes(clean, corrupted)
    shape = model_shape(model)
    check_flags(qk_fix=qk_fix, grad_drop=grad_drop, n_layers=shape.n_layers)
    site_list = validate_sites(sites, shape, seq_len=int(clean.shape[1]))
    fix = QKFix(model) if qk_fix and any(s.kind in QK_KINDS for s in site_list) else None
    names = unique_hook_names(site_list)
    names += [n for n in (fix.hook_names(site_list) if fix else []) if n not in names]
    clean, corrupted = to_model(model, clean), to_model(model, corrupted)
    _, clean_acts = capture(model, clean, names)
    drops = range(shape.n_layers) if grad_drop else [None]
    acts: dict[str, Tensor] = {}
    runs: list[dict[str, Tensor]] = []  # gradients per run: one per dropped layer
    for drop in drops:
        extra = [] if drop is None else drop_hooks(drop, attn_only=shape.attn_only)
        # The forward values do not depend on the drop: keep the first run's.
        run_acts, grads = _gradient_run(model, names, corrupted, metric, batch, extra)
        acts = acts or run_acts
        runs.append(grads)
    if fix is not None:
        fix.prepare(clean_acts, acts)
    per_site = [
        fix.score(s, [g[Site(kind="pattern", layer=s.layer, head=0).hook_name] for g in runs])
        if fix is not None and s.kind in QK_KINDS
        else torch.stack([
            site_slice_sum(s, (clean_acts[s.hook_name] - acts[s.hook_name]) * g[s.hook_name])
            for g in runs
        ])
        for s in site_list
    ]  # fmt: skip
    per_run = list(torch.stack(per_site, dim=1))  # [n_runs, n_sites, b] -> per run
    per_example = combine_grad_drop(per_run) if grad_drop else per_run[0]
    return NodeScores(sites=site_list, per_example=per_example.float().cpu())


def _gradient_run(
    model: TransformerBridge,
    names: list[str],
    corrupted: Tensor,
    metric: Any,
    batch: Any,
    extra: list[tuple[str, Any]],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The corrupted run's activations at `names` and the metric's gradient there
    (`extra` hooks run after the leaves, e.g. GradDrop's)."""
    corrupted_acts: dict[str, Tensor] = {}
    leaves: dict[str, Tensor] = {}

    def make(name: str) -> Any:
        def fn(act: Tensor, *, hook: Any) -> Tensor:
            corrupted_acts[name] = act.detach().clone()
            leaf = torch.zeros_like(act, requires_grad=True)
            leaves[name] = leaf
            return act + leaf

        return fn

    with torch.enable_grad(), hook_context(model, fwd=[(n, make(n)) for n in names] + extra):
        logits = model(corrupted)
        value = _metric_sum(metric, logits, batch)
        missing = [n for n in names if n not in leaves]
        if missing:
            raise MesaInterpError(f"hooks {missing} did not fire in the forward pass")
        grads = dict(
            zip(names, torch.autograd.grad(value, [leaves[n] for n in names]), strict=True)
        )
    return corrupted_acts, {n: g.detach() for n, g in grads.items()}
