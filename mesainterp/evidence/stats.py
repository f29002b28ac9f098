"""Held-out per-example scores of one probe, and seeded bootstrap intervals.

The probe sweeps (`mesainterp.probes`) give a fold mean and standard error per
site; the scorecard wants a bootstrap interval over examples at the chosen
site, so the chosen site is refitted here fold by fold keeping every example's
own held-out outcome.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.linear import fit_logistic, fit_ridge, standardize

__all__ = ["bootstrap_mean", "bootstrap_r2", "heldout_predictions", "r2_score"]


def heldout_predictions(
    features: Float[Tensor, "n d"],
    y: Tensor,
    *,
    kind: Literal["logistic", "ridge"],
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    alpha: float = 1.0,
) -> Tensor:
    """Every example's prediction by a probe that never saw it (k-fold, same folds
    as `probes.cross_validate`): class ids for logistic, values [n] for ridge."""
    n = features.shape[0]
    x = features[None].to(torch.float64)
    strat = y if kind == "logistic" else None
    out = torch.empty(n, dtype=torch.float64 if kind == "ridge" else torch.long)
    n_classes = int(y.max()) + 1 if kind == "logistic" else None
    for train, test in kfold_indices(n, k=folds, seed=seed, stratify=strat):
        std = standardize(x[:, train])
        if kind == "ridge":
            probe = fit_ridge(std(x[:, train]), y[train].to(torch.float64), alpha=alpha)
            out[test] = probe.predict(std(x[:, test]))[0, :, 0]
        else:
            probe = fit_logistic(std(x[:, train]), y[train], C=C, n_classes=n_classes)
            pred = probe.predict(std(x[:, test]))
            if probe.kind == "binary":
                pred = pred[..., 0].long()
            out[test] = pred[0]
    return out


def _indices(n: int, n_boot: int, seed: int) -> Tensor:
    return torch.randint(0, n, (n_boot, n), generator=torch.Generator().manual_seed(seed))


def bootstrap_mean(
    values: Float[Tensor, " n"], *, n_boot: int = 500, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-example values (NaNs dropped)."""
    v = values.detach().double().cpu()
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return float("nan"), float("nan")
    means = v[_indices(v.numel(), n_boot, seed)].mean(1)
    a = (1 - confidence) / 2
    q = torch.quantile(means, torch.tensor([a, 1 - a], dtype=torch.float64))
    return float(q[0]), float(q[1])


def bootstrap_r2(
    y: Float[Tensor, " n"],
    pred: Float[Tensor, " n"],
    *,
    n_boot: int = 500,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of R² = 1 - SS_res / SS_tot, resampling examples."""
    y, pred = y.detach().double().cpu(), pred.detach().double().cpu()
    idx = _indices(y.numel(), n_boot, seed)
    ys, ps = y[idx], pred[idx]
    ss_res = (ys - ps).pow(2).sum(1)
    ss_tot = (ys - ys.mean(1, keepdim=True)).pow(2).sum(1).clamp_min(1e-300)
    r2 = 1 - ss_res / ss_tot
    a = (1 - confidence) / 2
    q = torch.quantile(r2, torch.tensor([a, 1 - a], dtype=torch.float64))
    return float(q[0]), float(q[1])


def r2_score(y: Float[Tensor, " n"], pred: Float[Tensor, " n"]) -> float:
    """R² of `pred` against `y` (1 = identical, 0 = no better than y's mean)."""
    y, pred = y.detach().double().cpu(), pred.detach().double().cpu()
    ss_tot = float((y - y.mean()).pow(2).sum())
    if ss_tot <= 0:
        return float("nan")
    return 1.0 - float((y - pred).pow(2).sum()) / ss_tot
