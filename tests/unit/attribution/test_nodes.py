"""Node attribution against the exact patching engine."""

from __future__ import annotations

import torch

from mesainterp.attribution import node_attribution
from mesainterp.discovery import planted_model, planted_pair
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.engine import run_sweep
from mesainterp.patching.hooks import count_hooks
from mesainterp.patching.metrics import logit_diff
from mesainterp.sites import Site, head_sites, mlp_sites, resid_sites


def _exact(model, sites, clean, corrupted, metric) -> torch.Tensor:
    sweep = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    return sweep.patched - sweep.corrupted


def test_linear_model_node_attribution_equals_exact_patching() -> None:
    model = planted_model()
    case = planted_pair(seq_len=5)
    shape = model_shape(model)
    sites = (
        head_sites(shape, seq_len=5, kind="z", by_pos=True)
        + resid_sites(shape, seq_len=5)
        + [Site(kind="attn_out", layer=1), Site(kind="v", layer=0, head=1, pos=0)]
    )
    before = count_hooks(model)
    scores = node_attribution(
        model, sites, clean=case.clean, corrupted=case.corrupted, metric=case.metric
    )
    assert count_hooks(model) == before
    exact = _exact(model, sites, case.clean, case.corrupted, case.metric)
    assert (scores.per_example - exact).abs().max() <= 1e-4
    named = scores.as_dict()
    assert all(v == 0.0 for k, v in named.items() if k.startswith(("L0H0", "L1H1")))
    assert named["L1H0 z @4"] > 0


def test_random_model_node_attribution_tracks_exact_patching() -> None:
    model = build_model(
        ModelConfig(
            n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=13, n_ctx=16, seed=5
        )
    )
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 13, (16, 8), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 2] = (clean[:, 2] + 1 + torch.randint(0, 12, (16,), generator=gen)) % 13
    metric = logit_diff(torch.full((16,), 7), clean[:, 2], corrupted[:, 2])
    shape = model_shape(model)
    sites = head_sites(shape, seq_len=8, by_pos=True) + mlp_sites(shape, seq_len=8)
    scores = node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    exact = _exact(model, sites, clean, corrupted, metric).mean(dim=1)
    pearson = float(torch.corrcoef(torch.stack([scores.scores, exact]))[0, 1])
    print(f"node attribution vs exact: pearson {pearson:.3f}")
    assert pearson > 0.8
    assert all(p.grad is None for p in model.parameters())
