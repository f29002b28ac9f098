"""The battery's paired bootstrap scores against scoring each resample on its own,
through `mesainterp.stats`' resample indices, and its refusals."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.evidence.stats import bootstrap_weights, weighted_scores
from mesainterp.stats import r2_score, resample_indices


def test_weighted_scores_equal_each_resample_scored_alone() -> None:
    g = torch.Generator().manual_seed(0)
    n, n_boot = 9, 20
    correct = (torch.rand(2, n, generator=g) > 0.5).double()
    y = torch.randn(n, generator=g, dtype=torch.float64)
    pred = y + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    weights = bootstrap_weights(n, n_boot, 4)
    accuracy = weighted_scores(correct, weights, metric="accuracy")
    r2 = weighted_scores((pred - y).pow(2)[None], weights, metric="r2", y=y)
    for b, rows in enumerate(resample_indices(n, n_boot, 4)):
        assert accuracy[:, b].tolist() == pytest.approx(correct[:, rows].mean(1).tolist())
        assert float(r2[0, b]) == pytest.approx(r2_score(y[rows], pred[rows]), abs=1e-9)


def test_weighted_scores_refuse_an_unknown_metric_and_r2_without_targets() -> None:
    values, weights = torch.ones(1, 3), bootstrap_weights(3, 2, 0)
    with pytest.raises(ConfigError, match=r"^metric: got 'f1' \(allowed: 'accuracy'"):
        weighted_scores(values, weights, metric="f1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^y: required for metric 'r2'"):
        weighted_scores(values, weights, metric="r2")
