"""Sites streamed in chunks give the unchunked probes and scores; CV at p > n
against a StandardScaler + sklearn loop; labels of any shape.

"Identical" is up to the rounding of batched BLAS kernels, which may take another
path for another batch size: checked in float64, where that is below 1e-12. (In
float32 a logistic fit stopped by its tolerance can move by about that tolerance.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from mesainterp.errors import ConfigError
from mesainterp.probes import chunks
from mesainterp.probes.chunks import site_chunks
from mesainterp.probes.controls import ProbeSpec, infer_kind, prepare_target, run_probes
from mesainterp.probes.cv import cross_validate, kfold_indices, majority_baseline
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.probes.linear import fit_logistic, fit_multilabel, fit_ridge
from mesainterp.sites import Site


def _data(sites: int, n: int, d: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.randn(sites, n, d, generator=gen)
    strength = torch.linspace(0.0, 1.0, sites)[:, None, None]
    x += strength * torch.randn(3, d, generator=gen)[y][None] + 0.5
    return x, y


def test_site_chunks_cover_the_sites_and_follow_the_budget(monkeypatch) -> None:
    assert site_chunks(7, 1, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    monkeypatch.setattr(chunks, "MEMORY_BUDGET_BYTES", 100)
    assert site_chunks(5, 40, None) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert site_chunks(2, 10**6, None) == [slice(0, 1), slice(1, 2)]  # at least one site
    with pytest.raises(ConfigError, match="chunk_sites"):
        site_chunks(5, 1, 0)


@pytest.mark.parametrize(("n", "d"), [(40, 60), (120, 8)])
def test_chunked_fits_equal_the_unchunked_fit(n: int, d: int) -> None:
    x, y = _data(7, n, d)
    x = x.double()
    f64 = {"dtype": torch.float64, "tol": 1e-8}
    for fit in (
        lambda c: fit_logistic(x, y, chunk_sites=c, **f64),
        lambda c: fit_logistic(x, y % 2, chunk_sites=c, **f64),
        lambda c: fit_multilabel(x, torch.nn.functional.one_hot(y, 3), chunk_sites=c),
        lambda c: fit_ridge(x, y.double()[:, None] * torch.ones(1, 2), chunk_sites=c),
    ):
        whole, parts = fit(None), fit(3)
        assert torch.allclose(whole.coef, parts.coef, rtol=0, atol=1e-12)
        assert torch.allclose(whole.intercept, parts.intercept, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("n", "d"), [(40, 60), (120, 8)])
@pytest.mark.parametrize("kind", ["logistic", "multilabel", "ridge"])
def test_chunked_cross_validation_equals_the_unchunked_run(n: int, d: int, kind: str) -> None:
    x, y = _data(5, n, d, seed=1)
    x = x.double()
    target = {
        "logistic": y,
        "multilabel": torch.nn.functional.one_hot(y, 3),
        "ridge": y.double() + 0.1 * x[4, :, 0].double(),
    }[kind]
    whole = cross_validate(x, target, kind=kind, k=4, progress=False)  # type: ignore[arg-type]
    parts = cross_validate(x, target, kind=kind, k=4, progress=False, chunk_sites=2)  # type: ignore[arg-type]
    assert torch.allclose(whole.per_fold, parts.per_fold, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["logistic", "ridge"])
def test_wide_cross_validation_matches_a_scaler_and_sklearn_loop(kind: str) -> None:
    """p > n_train: held-out accuracy within 0.02, R² within 1e-4 (float32 features)."""
    n, d = 60, 100
    x, y = _data(3, n, d, seed=2)
    target = y if kind == "logistic" else x[2, :, :3].double().sum(1) + 0.3 * y.double()
    ours = cross_validate(x, target, kind=kind, C=0.5, alpha=2.0, k=4, seed=3, progress=False)  # type: ignore[arg-type]
    strat = target if kind == "logistic" else None
    for s in range(3):
        vals = []
        for train, test in kfold_indices(n, k=4, seed=3, stratify=strat):
            xs = x[s].double().numpy()
            scaler = StandardScaler().fit(xs[train])
            model = Ridge(alpha=2.0) if kind == "ridge" else LogisticRegression(C=0.5, tol=1e-8)
            model.fit(scaler.transform(xs[train]), target[train].numpy())
            vals.append(model.score(scaler.transform(xs[test]), target[test].numpy()))
        tol = 0.02 if kind == "logistic" else 1e-4
        assert abs(float(ours.mean[s]) - float(np.mean(vals))) <= tol, s


def test_labels_of_any_trailing_shape_are_one_output_per_entry() -> None:
    """An adjacency matrix per example [n, 3, 3] fits as its flattened [n, 9]."""
    x, y = _data(2, 80, 5, seed=3)
    adjacency = (
        torch.stack([y == a for a in range(3)], 1)[:, :, None] & (x[1, :, :3] > 0.5)[:, None]
    )
    flat = adjacency.reshape(80, 9)
    got, expected = fit_multilabel(x, adjacency), fit_multilabel(x, flat)
    assert torch.equal(got.coef, expected.coef) and got.coef.shape == (2, 5, 9)
    cv = cross_validate(x, adjacency, kind="multilabel", k=4, progress=False)
    assert torch.equal(cv.per_fold, cross_validate(x, flat, kind="multilabel", k=4).per_fold)
    base = majority_baseline(adjacency, kind="multilabel", k=4)
    assert torch.equal(base.per_fold, majority_baseline(flat, kind="multilabel", k=4).per_fold)
    values = torch.randn(80, 2, 2, dtype=torch.float64)
    assert torch.equal(fit_ridge(x, values).coef, fit_ridge(x, values.reshape(80, 4)).coef)
    assert infer_kind(adjacency) == "multilabel"


@pytest.mark.parametrize(
    ("call", "shape"),
    [
        (lambda x, y: fit_logistic(x, y[:, None].expand(-1, 3)), "(40, 3)"),
        (lambda x, y: fit_logistic(x, y[:9]), "(9,)"),
        (lambda x, y: fit_multilabel(x, y[:9, None]), "(9, 1)"),
        (lambda x, y: fit_multilabel(x, y[:, None] + 1), "(40, 1)"),
        (lambda x, y: fit_ridge(x, torch.randn(9, 3, 3)), "(9, 3, 3)"),
        (lambda x, y: cross_validate(x, torch.stack([y, y], 1), kind="logistic"), "(40, 2)"),
        (lambda x, y: cross_validate(x, y[:9, None].bool(), kind="multilabel"), "(9, 1)"),
    ],
)
@pytest.mark.usefixtures("no_runtime_check")  # the refusal users see, without the suite's check
def test_labels_of_the_wrong_shape_are_refused_in_one_line_naming_it(call, shape: str) -> None:
    x, y = _data(2, 40, 4, seed=4)
    with pytest.raises(
        ConfigError, match=r"^y: .*" + shape.replace("(", r"\(").replace(")", r"\)")
    ) as err:
        call(x, y)
    assert "\n" not in str(err.value)


def test_a_three_dimensional_label_runs_through_run_probes() -> None:
    """The review's `--target adjacency --kind multilabel` path: [n, 3, 3] bool."""
    x, y = _data(2, 40, 4, seed=5)
    gen = torch.Generator().manual_seed(0)
    adjacency = (torch.rand(40, 3, 3, generator=gen) > 0.5) | (y == 1)[:, None, None]
    sites = tuple(Site(kind="resid_post", layer=i, pos=0) for i in range(2))
    data = ActivationDataset(sites=sites, features=x, labels={"adjacency": adjacency})
    for kind in ("auto", "multilabel"):
        spec = ProbeSpec(target="adjacency", kind=kind, folds=4)  # type: ignore[arg-type]
        assert prepare_target(data, spec)[1] == "multilabel"
        table = run_probes(data, spec, progress=False).table
        assert table["kind"].tolist() == ["multilabel"] * 2
        assert table["value"].between(0, 1).all()
    with pytest.raises(ConfigError, match=r"logistic needs a 1-D label.*\(40, 3, 3\)"):
        run_probes(data, ProbeSpec(target="adjacency", kind="logistic"), progress=False)
