"""Attribution-vs-exact agreement: the statistics against scipy, the sweep against hooks."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from mesainterp.attribution import (
    attribution_agreement,
    edge_attribution,
    node_attribution,
    pearson,
    spearman,
    top_k_overlap,
)
from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.engine import run_sweep
from mesainterp.patching.metrics import logit_diff
from mesainterp.sites import head_sites


def test_statistics_match_scipy() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, generator=gen)
    b = a + 0.5 * torch.randn(40, generator=gen)
    b[3] = b[7]  # a tie
    assert pearson(a, b) == pytest.approx(
        stats.pearsonr(a.double().numpy(), b.double().numpy()).statistic, abs=1e-9
    )
    assert spearman(a, b) == pytest.approx(
        stats.spearmanr(a.double().numpy(), b.double().numpy()).statistic, abs=1e-9
    )
    assert top_k_overlap(a, a, 5) == 1.0
    assert top_k_overlap(torch.tensor([3.0, -2.0, 1.0]), torch.tensor([0.0, 1.0, 5.0]), 2) == 0.5
    with pytest.raises(ConfigError, match="k"):
        top_k_overlap(a, b, 0)


def _setup():
    model = build_model(
        ModelConfig(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=13,
                    n_ctx=12, seed=5)
    )  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 13, (8, 10), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 4] = (clean[:, 4] + 3) % 13
    metric = logit_diff(torch.full((8,), 9), clean[:, 4], corrupted[:, 4])
    return model, clean, corrupted, metric


@pytest.mark.parametrize("granularity", ["head", "head_pos"])
def test_agreement_reads_the_hooked_sweep_and_node_attribution(granularity: str) -> None:
    model, clean, corrupted, metric = _setup()
    a = attribution_agreement(
        model,
        clean=clean,
        corrupted=corrupted,
        metric=metric,
        granularity=granularity,  # type: ignore[arg-type]
    )
    sites = head_sites(model_shape(model), seq_len=10, kind="z", by_pos=granularity == "head_pos")
    sweep = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric,
                      method="hooks")  # fmt: skip
    exact = (sweep.patched - sweep.corrupted).mean(dim=1)
    attr = node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    assert a.n_sites == len(sites) == len(a.labels)
    assert torch.allclose(a.exact, exact, atol=1e-5)
    assert torch.allclose(a.attribution, attr.scores, atol=1e-6)
    assert a.pearson == pytest.approx(pearson(attr.scores, exact), abs=1e-6)


def test_a_heads_outgoing_edge_scores_sum_to_its_node_score() -> None:
    """Why IG head scores sum edges: with EAP (alpha = 0) the sum is the node gradient."""
    model, clean, corrupted, metric = _setup()
    edges = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric)
    sites = head_sites(model_shape(model), kind="z")
    nodes = node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    g = edges.graph
    summed = torch.stack([edges.scores[g.up_index(f"L{s.layer}H{s.head}")].sum() for s in sites])
    assert torch.allclose(summed, nodes.scores, atol=1e-4)
    ig = attribution_agreement(model, clean=clean, corrupted=corrupted, metric=metric, ig_steps=3)
    assert ig.estimate == "eap-ig, 3 steps"
    assert ig.n_sites == 4 and torch.isfinite(ig.attribution).all()
    with pytest.raises(ConfigError, match="ig_steps"):
        attribution_agreement(model, clean=clean, corrupted=corrupted, metric=metric,
                              granularity="head_pos", ig_steps=3)  # fmt: skip
