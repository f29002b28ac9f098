"""Cross-validation: folds, held-out scores against a per-site sklearn loop, controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from mesainterp.errors import ConfigError
from mesainterp.probes.cv import cross_validate, kfold_indices, majority_baseline


def test_folds_are_disjoint_covering_and_deterministic() -> None:
    y = torch.arange(103) % 4
    for strat in (None, y):
        folds = kfold_indices(103, k=5, seed=7, stratify=strat)
        again = kfold_indices(103, k=5, seed=7, stratify=strat)
        tests = [set(t.tolist()) for _, t in folds]
        assert sum(len(t) for t in tests) == 103
        assert set().union(*tests) == set(range(103))
        for (train, test), (train2, test2) in zip(folds, again, strict=True):
            assert torch.equal(train, train2) and torch.equal(test, test2)
            assert not set(train.tolist()) & set(test.tolist())
            assert len(train) + len(test) == 103
    other = kfold_indices(103, k=5, seed=8)
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_stratified_folds_balance_classes() -> None:
    y = torch.tensor([0] * 50 + [1] * 10)
    for _, test in kfold_indices(60, k=5, seed=0, stratify=y):
        assert int((y[test] == 1).sum()) == 2


def test_bad_k_is_refused() -> None:
    with pytest.raises(ConfigError, match="k"):
        kfold_indices(10, k=1)


def _planted(sites: int = 6, n: int = 400, d: int = 16, signal_site: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sites, n, d, generator=gen)
    y = torch.randint(0, 4, (n,), generator=gen)
    # Class-dependent offset along a few directions at one site only.
    means = 3.0 * torch.randn(4, d, generator=gen)
    x[signal_site] += means[y]
    return x, y


def test_cross_validated_accuracy_matches_sklearn_loop() -> None:
    x, y = _planted(sites=3, n=300, signal_site=1)
    ours = cross_validate(x, y, kind="logistic", C=0.3, k=4, seed=1)
    for s in range(3):
        accs = []
        for train, test in kfold_indices(300, k=4, seed=1, stratify=y):
            scaler = StandardScaler().fit(x[s, train].double().numpy())
            clf = LogisticRegression(C=0.3, max_iter=5000).fit(
                scaler.transform(x[s, train].double().numpy()), y[train].numpy()
            )
            accs.append(clf.score(scaler.transform(x[s, test].double().numpy()), y[test].numpy()))
        assert abs(float(ours.mean[s]) - float(np.mean(accs))) <= 0.01


def test_planted_signal_is_found_at_its_site_only() -> None:
    x, y = _planted()
    scores = cross_validate(x, y, kind="logistic", k=5, seed=0)
    assert int(scores.mean.argmax()) == 3
    assert float(scores.mean[3]) > 0.9
    others = torch.cat([scores.mean[:3], scores.mean[4:]])
    assert float(others.max()) < 0.4


def test_shuffled_labels_give_chance_accuracy() -> None:
    x, y = _planted()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(5))
    scores = cross_validate(x, y[perm], kind="logistic", k=5, seed=0)
    chance = float(majority_baseline(y[perm], k=5, seed=0).mean[0])
    # Within 3 standard errors of chance at every site, the planted one included.
    half_width = 3 * scores.se + 0.02
    assert ((scores.mean - chance).abs() <= half_width).all()


def test_ridge_r2_and_baseline() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 200, 5, generator=gen)
    w = torch.randn(5, 3, generator=gen)
    y = x[1] @ w + 0.1 * torch.randn(200, 3, generator=gen)
    scores = cross_validate(x, y, kind="ridge", alpha=1.0, k=5)
    assert scores.metric == "r2"
    assert float(scores.mean[1]) > 0.95
    assert float(scores.mean[0]) < 0.1
    base = majority_baseline(y, kind="ridge", k=5)
    assert float(base.mean[0]) <= 0.0


def test_multilabel_scores_per_label_accuracy() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 300, 6, generator=gen)
    y = (x[0, :, :3] > 0).long()
    scores = cross_validate(x, y, kind="multilabel", k=3)
    assert float(scores.mean[0]) > 0.95
    assert 0.35 < float(scores.mean[1]) < 0.65
