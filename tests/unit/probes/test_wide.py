"""Probes with fewer rows than features (d_model 768 with a few hundred examples):
the diagonal preconditioner and the dual ridge against sklearn, at p > n and p < n."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from mesainterp.probes.bohning import DiagonalBohning
from mesainterp.probes.gram import column_moments
from mesainterp.probes.lbfgs import fit_lbfgs
from mesainterp.probes.linear import fit_logistic, fit_multilabel, fit_ridge


def _wide(sites: int, n: int, d: int, k: int, *, offset: float = 0.0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=gen)
    x = torch.randn(sites, n, d, generator=gen, dtype=torch.float64)
    x += 0.4 * torch.randn(k, d, generator=gen, dtype=torch.float64)[y][None]
    # Columns of different scale and far from zero: the intercept couples to them.
    x = x * torch.linspace(0.5, 2.0, d, dtype=torch.float64) + offset
    return x, y


def test_diagonal_preconditioner_is_the_inverse_of_the_centred_diagonal_bound() -> None:
    """Oracle: the p×p matrix Aᵀ·blockdiag(c·diag(XcᵀXc) + λ, c·n)·A, inverted densely."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 20, 6, generator=gen, dtype=torch.float64) + 5.0
    n, d, c = 20, 6, 0.25
    reg = torch.full((d + 1,), 2.0, dtype=torch.float64)
    reg[-1] = 0.0
    mean = x.mean(1)
    sq = (x - mean[:, None]).square().sum(1)
    precond = DiagonalBohning(mean, sq, n, reg, c, torch.float64)
    q = torch.randn(3, d + 1, 4, generator=gen, dtype=torch.float64)
    got = precond @ q
    for s in range(3):
        a = torch.eye(d + 1, dtype=torch.float64)
        a[d, :d] = mean[s]  # b' = b + μᵀw
        block = torch.diag(torch.cat([c * sq[s] + reg[:-1], torch.tensor([c * n])]))
        dense = a.T @ block @ a
        expected = torch.linalg.solve(dense, q[s])
        assert torch.allclose(got[s], expected, rtol=1e-9, atol=1e-10)
    keep = torch.tensor([2, 0])
    assert torch.allclose(precond.select(keep) @ q[keep], (precond @ q)[keep])


def test_column_moments_match_the_gram_diagonal() -> None:
    x = torch.randn(2, 30, 5, dtype=torch.float64)
    sums, squares = column_moments(x)
    assert torch.allclose(sums, x.sum(1)) and torch.allclose(squares, x.square().sum(1))


@pytest.mark.parametrize(("n", "d"), [(60, 150), (200, 20)])
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("offset", [0.0, 30.0])
def test_logistic_matches_sklearn_wide_and_tall(n: int, d: int, k: int, offset: float) -> None:
    """float64 at tol 1e-9: the optimum itself agrees with sklearn to 1e-4 (relative to
    the largest weight); the same fit in float32 at sklearn's tol to 0.02 in accuracy.

    sklearn fits the centred columns (same optimum, intercept shifted by μᵀw): on
    columns 30 from zero it stops thousands of iterations later at a higher loss."""
    x, y = _wide(3, n, d, k, offset=offset)
    tight = fit_logistic(x, y, C=0.5, tol=1e-9, max_iter=5000, dtype=torch.float64)
    assert tight.converged
    for s in range(3):
        mean = x[s].mean(0).numpy()
        sk = LogisticRegression(C=0.5, tol=1e-12, max_iter=100_000)
        sk.fit(x[s].numpy() - mean, y.numpy())
        scale = 1 + np.abs(sk.coef_).max()
        np.testing.assert_allclose(tight.coef[s].numpy(), sk.coef_.T, atol=1e-4 * scale)
        if k == 2:  # sklearn's multinomial intercepts are centred; binary ones are not
            intercept = sk.intercept_ - mean @ sk.coef_.T
            np.testing.assert_allclose(tight.intercept[s].numpy(), intercept, atol=1e-4 * scale)
    if offset == 0.0:
        probe = fit_logistic(x.float(), y, C=0.5)
        pred = probe.predict(x.float())
        pred = pred[..., 0].long() if probe.kind == "binary" else pred
        for s in range(3):
            sk = LogisticRegression(C=0.5, max_iter=10_000).fit(x[s].numpy(), y.numpy())
            ours = (pred[s] == y).double().mean().item()
            assert abs(ours - sk.score(x[s].numpy(), y.numpy())) <= 0.02


def test_wide_multilabel_matches_independent_sklearn_fits() -> None:
    x, labels = _wide(2, 50, 120, 4, seed=1)
    y = torch.nn.functional.one_hot(labels, 4)[:, :3]
    probe = fit_multilabel(x, y, C=0.3, tol=1e-10, max_iter=5000)
    assert probe.converged
    for s in range(2):
        for j in range(3):
            sk = LogisticRegression(C=0.3, tol=1e-12, max_iter=100_000)
            sk.fit(x[s].numpy(), y[:, j].numpy())
            np.testing.assert_allclose(probe.coef[s, :, j].numpy(), sk.coef_[0], atol=1e-5)
            np.testing.assert_allclose(probe.intercept[s, j].item(), sk.intercept_[0], atol=1e-5)


def test_wide_fit_uses_the_diagonal_preconditioner_and_full_bound_agrees() -> None:
    """The same objective through the full p×p bound (oracle for the fast path)."""
    x, y = _wide(2, 40, 90, 2, offset=3.0, seed=2)
    t = (y == 1)[:, None].double()
    kwargs = {"link": "sigmoid", "C": 1.0, "tol": 1e-10, "max_iter": 5000}
    fast = fit_lbfgs(x, t, **kwargs)
    xt = torch.cat([x, torch.ones(2, 40, 1, dtype=torch.float64)], 2)
    full = fit_lbfgs(x, t, gram=xt.mT @ xt, **kwargs)
    assert fast.converged and full.converged
    assert torch.allclose(fast.theta, full.theta, atol=1e-6)


@pytest.mark.parametrize(("n", "d"), [(40, 100), (100, 10)])
def test_ridge_matches_sklearn_wide_and_tall_in_float32(n: int, d: int) -> None:
    """float32 features: coefficients within 1e-4 of sklearn's float64 fit (relative)."""
    x, _ = _wide(2, n, d, 2, offset=2.0, seed=3)
    y = x[0, :, :3] @ torch.ones(3, 2, dtype=torch.float64) + 0.1 * torch.randn(n, 2)
    probe = fit_ridge(x.float(), y, alpha=2.0)
    for s in range(2):
        sk = Ridge(alpha=2.0).fit(x[s].float().double().numpy(), y.numpy())
        rel = np.abs(probe.coef[s].numpy() - sk.coef_.T).max() / np.abs(sk.coef_).max()
        assert rel <= 1e-4
