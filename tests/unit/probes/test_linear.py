"""Batched probes against their sklearn / numpy oracles, one site at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from mesainterp.errors import ConfigError
from mesainterp.probes.linear import fit_logistic, fit_multilabel, fit_ridge, standardize


def _features(sites: int, n: int, d: int, k: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sites, n, d, generator=gen)
    w = torch.randn(d, k, generator=gen)
    # Signal of varying strength per site, so accuracies differ across sites.
    strength = torch.linspace(0.0, 1.5, sites)
    logits = torch.einsum("snd,dk->snk", x, w) * strength[:, None, None]
    y = (logits[-1] + torch.randn(n, k, generator=gen)).argmax(-1)
    return x, y


@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("C", [0.05, 1.0])
def test_logistic_matches_sklearn(k: int, C: float) -> None:
    x, y = _features(4, 300, 12, k)
    xs = standardize(x)(x)
    probe = fit_logistic(xs, y, C=C)
    tight = fit_logistic(xs, y, C=C, tol=1e-8, dtype=torch.float64)
    assert probe.converged and tight.converged
    pred = probe.predict(xs)
    if probe.kind == "binary":
        pred = pred[..., 0].long()
    for s in range(x.shape[0]):
        sk = LogisticRegression(C=C, max_iter=10_000, tol=1e-10).fit(xs[s].numpy(), y.numpy())
        ours = (pred[s] == y).double().mean().item()
        theirs = sk.score(xs[s].numpy(), y.numpy())
        assert abs(ours - theirs) <= 0.01
        # At a tight tolerance in float64 the optimum itself agrees.
        coef = tight.coef[s].numpy()
        np.testing.assert_allclose(coef, sk.coef_.T, atol=1e-4 * (1 + np.abs(sk.coef_).max()))


def test_multilabel_matches_independent_sklearn_fits() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 200, 8, generator=gen, dtype=torch.float64)
    y = (x[0, :, :4] + 0.5 * torch.randn(200, 4, generator=gen) > 0).long()
    probe = fit_multilabel(x, y, C=0.5)
    for s in range(3):
        for j in range(4):
            sk = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(
                x[s].numpy(), y[:, j].numpy()
            )
            np.testing.assert_allclose(probe.coef[s, :, j].numpy(), sk.coef_[0], atol=1e-5)
            np.testing.assert_allclose(probe.intercept[s, j].item(), sk.intercept_[0], atol=1e-5)


def test_ridge_matches_sklearn_and_numpy() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 120, 10, generator=gen, dtype=torch.float64)
    y = torch.randn(120, 3, generator=gen, dtype=torch.float64)
    probe = fit_ridge(x, y, alpha=3.0)
    for s in range(5):
        sk = Ridge(alpha=3.0).fit(x[s].numpy(), y.numpy())
        rel = np.abs(probe.coef[s].numpy() - sk.coef_.T).max() / np.abs(sk.coef_).max()
        assert rel <= 1e-5
        np.testing.assert_allclose(probe.intercept[s].numpy(), sk.intercept_, rtol=1e-5, atol=1e-9)
        # numpy closed form on centred data
        xc = x[s].numpy() - x[s].numpy().mean(0)
        yc = y.numpy() - y.numpy().mean(0)
        w = np.linalg.solve(xc.T @ xc + 3.0 * np.eye(10), xc.T @ yc)
        assert np.abs(probe.coef[s].numpy() - w).max() / np.abs(w).max() <= 1e-5


def test_standardize_keeps_constant_features_finite() -> None:
    x = torch.ones(2, 10, 3)
    x[:, :, 0] = torch.arange(10.0)
    z = standardize(x)(x)
    assert torch.isfinite(z).all()
    assert torch.allclose(z[:, :, 1:], torch.zeros(2, 10, 2, dtype=z.dtype))


def test_regularisation_strength_is_validated() -> None:
    x = torch.randn(1, 10, 2)
    with pytest.raises(ConfigError, match="C"):
        fit_logistic(x, torch.arange(10) % 3, C=0.0)
    with pytest.raises(ConfigError, match="alpha"):
        fit_ridge(x, torch.randn(10), alpha=-1.0)


def test_ridge_on_float32_features_stays_close_to_sklearn() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 400, 16, generator=gen) + 2.0
    y = x[0, :, :2].double() @ torch.ones(2, 2, dtype=torch.float64) + 0.1
    probe = fit_ridge(x, y, alpha=1.0)
    for s in range(3):
        sk = Ridge(alpha=1.0).fit(x[s].double().numpy(), y.numpy())
        rel = np.abs(probe.coef[s].numpy() - sk.coef_.T).max() / np.abs(sk.coef_).max()
        assert rel <= 1e-4


def test_ridge_dual_form_matches_sklearn_when_rows_are_fewer_than_features() -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3, 30, 50, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    probe = fit_ridge(x, y, alpha=0.5)
    for s in range(3):
        sk = Ridge(alpha=0.5).fit(x[s].numpy(), y.numpy())
        np.testing.assert_allclose(probe.coef[s].numpy(), sk.coef_.T, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(probe.intercept[s].numpy(), sk.intercept_, rtol=1e-8)


def test_ridge_on_float32_features_far_from_zero_keeps_its_digits() -> None:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 500, 8, generator=gen) + 300.0
    y = (x[0, :, :1].double() - 300.0) * 2.0
    probe = fit_ridge(x, y, alpha=1.0)
    for s in range(2):
        sk = Ridge(alpha=1.0).fit(x[s].double().numpy(), y.numpy())
        ours, theirs = probe.coef[s, :, 0].numpy(), sk.coef_.reshape(-1)
        assert np.abs(ours - theirs).max() / np.abs(theirs).max() <= 1e-4
