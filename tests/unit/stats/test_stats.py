"""mesainterp.stats against its oracles: scipy's Wilson interval, a naive
one-resample-at-a-time bootstrap with numpy percentiles, and a naive Holm loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, pearsonr, spearmanr

from mesainterp.errors import MesaInterpError
from mesainterp.stats import (
    bootstrap,
    bootstrap_mean,
    bootstrap_normalised,
    bootstrap_r2,
    holm_adjust,
    normal_quantile,
    normalise_by_gap,
    normalised_effect,
    pearson,
    r2_score,
    resample_counts,
    resample_indices,
    spearman,
    wilson_interval,
)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 50), (1, 3), (25, 50), (49, 50), (1000, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k: int, n: int, confidence: float) -> None:
    ours = wilson_interval(k, n, confidence=confidence)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert ours == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_at_zero_trials_is_the_whole_unit_interval() -> None:
    # The limit of the interval as n -> 0: no trials rule out no proportion.
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # ... the interval widens towards it as trials run out.
    assert wilson_interval(0, 1)[1] > wilson_interval(0, 2)[1] > wilson_interval(0, 3)[1]


@pytest.mark.parametrize(
    ("k", "n", "match"),
    [(-1, 5, "successes"), (6, 5, "exceeds"), (1, -2, "n"), (1.5, 3, "successes")],
)
def test_wilson_refuses_bad_counts(k: object, n: object, match: str) -> None:
    with pytest.raises(MesaInterpError, match=match):
        wilson_interval(k, n)  # type: ignore[arg-type]


def test_one_z_convention() -> None:
    assert normal_quantile(0.95) == pytest.approx(1.959963984540054, abs=1e-12)
    with pytest.raises(MesaInterpError, match="confidence"):
        normal_quantile(1.0)


def _naive_bootstrap(stat, n: int, n_boot: int, seed: int, confidence: float = 0.95):
    """One resample at a time, through the same seeded index draw, numpy percentiles."""
    idx = resample_indices(n, n_boot, seed).numpy()
    values = np.array([stat(row) for row in idx], dtype=float)
    values = values[np.isfinite(values)]
    a = (1 - confidence) / 2
    return np.percentile(values, [100 * a, 100 * (1 - a)])


def test_bootstrap_mean_matches_a_naive_loop() -> None:
    v = torch.randn(37, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = bootstrap_mean(v, n_boot=400, seed=5)
    ref = _naive_bootstrap(lambda r: v.numpy()[r].mean(), 37, 400, 5)
    assert ours == pytest.approx(tuple(ref), abs=1e-12)
    # Same seed, same interval; another seed, another one.
    assert bootstrap_mean(v, n_boot=400, seed=5) == ours
    assert bootstrap_mean(v, n_boot=400, seed=6) != ours


def test_bootstrap_mean_drops_nans_and_gives_nan_on_nothing() -> None:
    v = torch.tensor([1.0, float("nan"), 3.0, 2.0])
    lo, hi = bootstrap_mean(v, n_boot=200)
    assert 1.0 <= lo <= hi <= 3.0
    assert all(np.isnan(bootstrap_mean(torch.tensor([float("nan")]))))


def test_bootstrap_r2_matches_a_naive_loop() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    pred = y + 0.5 * torch.randn(30, generator=g, dtype=torch.float64)
    ours = bootstrap_r2(y, pred, n_boot=300, seed=2)

    def r2(rows: np.ndarray) -> float:
        return r2_score(y[rows], pred[rows])

    assert ours == pytest.approx(tuple(_naive_bootstrap(r2, 30, 300, 2)), abs=1e-10)
    assert r2_score(y, y) == 1.0 and np.isnan(r2_score(torch.ones(4), y[:4]))


def test_bootstrap_normalised_matches_a_naive_loop() -> None:
    g = torch.Generator().manual_seed(1)
    clean = 3 + torch.randn(25, generator=g, dtype=torch.float64)
    corrupted = torch.randn(25, generator=g, dtype=torch.float64)
    patched = torch.stack([corrupted, clean, (clean + 2 * corrupted) / 3])
    low, high = bootstrap_normalised(patched, clean, corrupted, n_boot=300, seed=7)
    for site in range(3):

        def ratio(rows: np.ndarray, site: int = site) -> float:
            k = corrupted[rows].mean()
            return float((patched[site, rows].mean() - k) / (clean[rows].mean() - k))

        ref = _naive_bootstrap(ratio, 25, 300, 7)
        assert (float(low[site]), float(high[site])) == pytest.approx(tuple(ref), abs=1e-10)
    assert torch.allclose(normalised_effect(patched, clean, corrupted).float(),
                          torch.tensor([0.0, 1.0, 1 / 3]), atol=1e-6)  # fmt: skip


def test_resample_counts_are_each_rows_bincount_and_share_the_bootstrap_resamples() -> None:
    idx = resample_indices(11, 50, 4)
    counts = resample_counts(idx)
    for row, c in zip(idx, counts, strict=True):
        assert torch.equal(c, torch.bincount(row, minlength=11).double())
    # A weighted mean over the counts is the mean over the same resample, so a
    # caller scoring several arrays on shared resamples sees bootstrap_mean's draws.
    v = torch.randn(11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weighted = torch.quantile(counts @ v / 11, torch.tensor([0.025, 0.975], dtype=torch.float64))
    assert tuple(weighted.tolist()) == pytest.approx(
        bootstrap_mean(v, n_boot=50, seed=4), abs=1e-12
    )


def test_bootstrap_keeps_leading_axes_and_checks_its_statistic() -> None:
    v = torch.arange(10, dtype=torch.float64)
    low, high = bootstrap(lambda idx: torch.stack([v[idx].mean(1), -v[idx].mean(1)]), 10)
    assert low.shape == (2,) and torch.allclose(low[1], -high[0])
    with pytest.raises(MesaInterpError, match="one value per resample"):
        bootstrap(lambda idx: v[idx].mean(), 10)
    with pytest.raises(MesaInterpError, match="n_boot"):
        bootstrap(lambda idx: v[idx].mean(1), 10, n_boot=0)
    assert bootstrap(lambda idx: idx.double(), 0)[0].isnan()


def test_normalise_by_gap_is_nan_without_a_gap() -> None:
    raw = torch.tensor([1.0, 2.0])
    assert torch.equal(normalise_by_gap(raw, 3.0, 1.0), torch.tensor([0.5, 1.0]))
    assert normalise_by_gap(raw, 1.0, 1.0).isnan().all()
    # The gap's sign carries through: a negative-going metric still reads 1 at clean.
    assert float(normalise_by_gap(torch.tensor([-2.0]), -2.0, 0.0)) == 1.0


def _naive_holm_rejects(p: list[float], alpha: float) -> list[bool]:
    order = sorted(range(len(p)), key=lambda i: p[i])
    reject = [False] * len(p)
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        reject[i] = True
    return reject


@pytest.mark.parametrize("seed", range(5))
def test_holm_rejects_what_the_step_down_procedure_rejects(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = list(rng.uniform(0, 0.1, size=8) ** rng.uniform(1, 3))
    adjusted = holm_adjust(p)
    assert (adjusted >= torch.tensor(p, dtype=torch.float64) - 1e-15).all() and adjusted.max() <= 1
    for alpha in (0.01, 0.05, 0.1):
        assert (adjusted <= alpha).tolist() == _naive_holm_rejects(p, alpha)


def test_holm_known_values_and_bad_input() -> None:
    adjusted = holm_adjust([0.01, 0.04, 0.03])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06])
    with pytest.raises(MesaInterpError, match="p_values"):
        holm_adjust([0.5, 1.5])


@pytest.mark.parametrize("seed", range(3))
def test_correlations_match_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=40).astype(float)  # many ties
    b = a + rng.normal(scale=1.0, size=40)
    assert pearson(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        pearsonr(a, b).statistic, abs=1e-12
    )
    assert spearman(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        spearmanr(a, b).statistic, abs=1e-12
    )
    assert np.isnan(pearson(torch.ones(5), torch.from_numpy(b[:5])))
