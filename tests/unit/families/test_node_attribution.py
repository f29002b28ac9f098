"""Node attribution on every architecture family against an independent autograd oracle.

The oracle replaces each site's hook output by a leaf tensor (`run_with_hooks`), takes
the metric's gradient with `torch.autograd`, and scores (clean act - corrupted act) .
grad over the site's slice. Where attribution is a statement about patching — a patch
small enough that the metric is linear in it — it must equal the finite difference
of a scaled-down exact patch.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from mesainterp.attribution import node_attribution
from mesainterp.sites import Site
from tests.families import ALL_FAMILIES, pair_inputs
from tests.unit.attribution.families import build_family

TOL = 1e-4
SEQ = 5


def _sites(model: Any) -> list[Site]:
    kv = int(getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads)
    mid = () if getattr(model.cfg, "parallel_attn_mlp", False) else ("resid_mid",)
    sites = [
        Site(kind=kind, layer=layer, pos=pos)
        for kind in ("resid_pre", *mid, "resid_post", "attn_out", "mlp_out")
        for layer in (0, 1)
        for pos in (3, None)
    ]
    sites += [
        Site(kind=kind, layer=layer, head=head, pos=pos)
        for kind, n in (("z", 4), ("q", 4), ("k", kv), ("v", kv), ("pattern", 4))
        for layer, pos in ((0, 3), (1, None))
        for head in (0, n - 1)
    ]
    return sites


def _index(site: Site) -> tuple[Any, ...]:
    """The site's slice of its hook's activation (pattern is [b, head, q, k])."""
    every = slice(None)
    pos = every if site.pos is None else site.pos
    if site.kind == "pattern":
        return (every, site.head, pos)
    if site.head is not None:
        return (every, pos, site.head)
    return (every, pos)


def _acts(model: Any, tokens: Tensor, names: list[str]) -> dict[str, Tensor]:
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return {n: cache[n] for n in names}


def _leaf_grad(model: Any, name: str, tokens: Tensor, metric: Any) -> Tensor:
    """dM/d(act) at hook `name`, the activation swapped for a leaf (one run per hook:
    some names alias one hook point)."""
    leaf: list[Tensor] = []

    def fn(act: Tensor, hook: Any) -> Tensor:
        leaf.append(act.detach().clone().requires_grad_(True))
        return leaf[0]

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])
        (grad,) = torch.autograd.grad(metric(logits, None).sum(), leaf)
    return grad


def oracle_scores(model: Any, sites: list[Site], clean: Tensor, corrupted: Tensor, metric: Any):
    names = sorted({s.hook_name for s in sites})
    c, r = _acts(model, clean, names), _acts(model, corrupted, names)
    grad = {name: _leaf_grad(model, name, corrupted, metric) for name in names}
    rows = []
    for s in sites:
        prod = ((c[s.hook_name] - r[s.hook_name]) * grad[s.hook_name])[_index(s)]
        rows.append(prod.reshape(prod.shape[0], -1).sum(1))
    return torch.stack(rows)


def _scaled_patch(model: Any, site: Site, eps: float, c: Tensor, r: Tensor, tokens, metric):
    """Metric after moving the site's slice a fraction `eps` from corrupted towards clean."""

    def fn(act: Tensor, hook: Any) -> Tensor:
        out = act.clone()
        idx = _index(site)
        out[idx] = r[idx] + eps * (c[idx] - r[idx])
        return out

    with torch.no_grad():
        return metric(model.run_with_hooks(tokens, fwd_hooks=[(site.hook_name, fn)]), None)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_node_attribution_matches_the_autograd_oracle(family: str) -> None:
    model = build_family(family)
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    sites = _sites(model)
    got = node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    oracle = oracle_scores(model, sites, clean, corrupted, metric)
    assert (got.per_example - oracle).abs().max() <= TOL
    assert oracle.abs().max() > 1e-2


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_attribution_is_the_small_patch_limit_of_exact_patching(family: str) -> None:
    """Linear regime: a patch of 0.2% of the difference moves the metric by 0.2% of the score."""
    model = build_family(family)
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    sites = [s for s in _sites(model) if s.pos is None or s.kind == "pattern"]
    got = node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    names = sorted({s.hook_name for s in sites})
    c, r = _acts(model, clean, names), _acts(model, corrupted, names)
    eps = 2e-3
    for site, score in zip(sites, got.per_example, strict=True):
        ca, ra = c[site.hook_name], r[site.hook_name]
        up = _scaled_patch(model, site, eps, ca, ra, corrupted, metric)
        down = _scaled_patch(model, site, -eps, ca, ra, corrupted, metric)
        slope = (up - down) / (2 * eps)
        assert (slope - score).abs().max() <= 1e-2 * score.abs().max() + 2e-3, site.label()


def test_the_oracle_sees_a_wrong_slice() -> None:
    """The comparison can fail: KV head 1's score is not KV head 0's."""
    model = build_family("llama")
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    ours = node_attribution(model, [Site(kind="k", layer=1, head=1)], clean=clean,
                            corrupted=corrupted, metric=metric)  # fmt: skip
    other = oracle_scores(model, [Site(kind="k", layer=1, head=0)], clean, corrupted, metric)
    assert (ours.per_example - other).abs().max() > 10 * TOL
