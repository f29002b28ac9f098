"""The batched L-BFGS's building blocks against their plain float64 oracles."""

from __future__ import annotations

import pytest
import torch

from mesainterp.probes.bohning import inverse_cholesky_factor
from mesainterp.probes.gram import augmented_gram, gram_matrix
from mesainterp.probes.lbfgs import fit_lbfgs
from mesainterp.probes.logistic_objective import FoldView


def _spd(sites: int, p: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(sites, 3 * p, p, generator=gen, dtype=torch.float64)
    return a.transpose(1, 2) @ a + 0.1 * torch.eye(p, dtype=torch.float64)


@pytest.mark.parametrize("p", [1, 7, 16, 17, 33, 129])
def test_inverse_cholesky_factor_is_the_inverse_of_the_lapack_factor(p: int) -> None:
    a = _spd(4, p)
    inv, bad = inverse_cholesky_factor(a)
    expected = torch.linalg.inv(torch.linalg.cholesky(a))
    assert not bad.any()
    assert torch.allclose(inv, expected, rtol=1e-9, atol=1e-9)
    assert torch.equal(inv, inv.tril())


def test_inverse_cholesky_factor_flags_the_sites_that_are_not_positive_definite() -> None:
    a = _spd(3, 40)
    a[1, 30, 30] = -5.0
    _, bad = inverse_cholesky_factor(a)
    assert bad.tolist() == [False, True, False]


@pytest.mark.parametrize("d", [1, 2, 9, 128])
def test_gram_from_its_trapezoid_matches_the_full_product(d: int) -> None:
    x = torch.randn(3, 50, d, dtype=torch.float64)
    assert torch.allclose(gram_matrix(x), x.mT @ x, rtol=1e-12, atol=1e-12)
    xt = torch.cat([x, torch.ones(3, 50, 1, dtype=torch.float64)], dim=2)
    assert torch.allclose(augmented_gram(x), xt.mT @ xt, rtol=1e-12, atol=1e-12)
    # float32 features: the product in float32, the result in the dtype asked for.
    g32 = gram_matrix(x.float(), dtype=torch.float64)
    assert g32.dtype == torch.float64
    assert torch.allclose(g32, x.mT @ x, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("link", ["sigmoid", "softmax"])
@pytest.mark.parametrize("held_out", [(0, 40), (70, 110), (160, 200)])
def test_fold_view_fits_as_the_standardised_training_rows_would(
    link: str, held_out: tuple[int, int]
) -> None:
    """The oracle materialises the fold's standardised training rows and fits them."""
    gen = torch.Generator().manual_seed(1)
    sites, n, d = 3, 200, 6
    x = 2.0 * torch.randn(sites, n, d, generator=gen, dtype=torch.float64) + 0.5
    labels = torch.randint(0, 3, (n,), generator=gen)
    x += 1.5 * torch.randn(3, d, generator=gen, dtype=torch.float64)[labels][None]
    y = (labels == 1)[:, None] if link == "sigmoid" else torch.nn.functional.one_hot(labels, 3)
    lo, hi = held_out
    keep = torch.cat([torch.arange(lo), torch.arange(hi, n)])
    train = x[:, keep]
    mean, scale = train.mean(1), train.std(1, unbiased=False)
    standardised = (train - mean[:, None]) / scale[:, None]
    kwargs = {"link": link, "C": 0.5, "tol": 1e-10, "max_iter": 500}
    expected = fit_lbfgs(standardised, y[keep].double(), **kwargs)
    view = FoldView(mean=mean, scale=scale, held_out=held_out)
    got = fit_lbfgs(x, y[keep].double(), gram=augmented_gram(standardised), view=view, **kwargs)
    assert got.converged and expected.converged
    assert torch.allclose(got.theta, expected.theta, rtol=1e-6, atol=1e-6)
    # The same coefficients score the held-out rows on x's own columns.
    w, b = view.raw_coefficients(got.theta)
    test_standardised = (x[:, lo:hi] - mean[:, None]) / scale[:, None]
    expected_scores = test_standardised @ got.theta[:, :-1] + got.theta[:, -1][:, None]
    assert torch.allclose(x[:, lo:hi] @ w + b[:, None], expected_scores, atol=1e-9)


@pytest.mark.parametrize("link", ["sigmoid", "softmax"])
def test_each_site_of_a_batch_fits_as_it_would_alone(link: str) -> None:
    """Sites converge at different iterations and leave the batch; none is disturbed."""
    gen = torch.Generator().manual_seed(2)
    sites, n, d = 12, 150, 5
    labels = torch.randint(0, 3, (n,), generator=gen)
    x = torch.randn(sites, n, d, generator=gen, dtype=torch.float64)
    strength = torch.linspace(0.0, 3.0, sites, dtype=torch.float64)[:, None, None]
    x += strength * torch.randn(3, d, generator=gen, dtype=torch.float64)[labels][None]
    y = (labels == 1)[:, None] if link == "sigmoid" else torch.nn.functional.one_hot(labels, 3)
    kwargs = {"link": link, "C": 2.0, "tol": 1e-9, "max_iter": 500}
    active: list[int] = []
    batch = fit_lbfgs(x, y.double(), progress=active.append, **kwargs)
    assert batch.converged and active[0] == sites and min(active) < sites / 2
    # Both fits stop once the summed gradient is below tol·n, so the two θ differ by
    # a small multiple of tol·n·C (3e-7 here); most sites agree to 1e-15.
    for s in range(sites):
        alone = fit_lbfgs(x[s : s + 1], y.double(), **kwargs).theta[0]
        got = batch.theta[s]
        assert torch.allclose(got[:-1], alone[:-1], rtol=0, atol=5e-6), s
        # Softmax intercepts are unpenalised and defined only up to a shared shift.
        b_got, b_alone = got[-1] - got[-1].mean(), alone[-1] - alone[-1].mean()
        assert torch.allclose(b_got, b_alone, rtol=0, atol=5e-6), s
