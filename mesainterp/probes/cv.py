"""Seeded k-fold cross-validation of batched probes: held-out score per site ± SE.

Folds are a loop of k (not of sites): each fold fits every site at once. Features
are standardised on the training rows of each fold only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import ConfigError, allowed
from mesainterp.probes.linear import fit_logistic, fit_multilabel, fit_ridge, standardize

__all__ = ["CVScores", "ProbeKind", "cross_validate", "kfold_indices", "majority_baseline"]

ProbeKind = Literal["logistic", "ridge", "multilabel"]


def kfold_indices(
    n: int, *, k: int = 5, seed: int = 0, stratify: Tensor | None = None
) -> list[tuple[Tensor, Tensor]]:
    """`k` disjoint test folds covering range(n), with their training complements.

    Deterministic in `seed`. With `stratify` (class ids [n]) each class is dealt
    round-robin across folds after a seeded shuffle, so folds keep class balance.
    """
    if not isinstance(k, int) or k < 2 or k > n:
        raise ConfigError("k", f"expected an int in 2..n={n}, got {k!r}")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    fold_of = torch.empty(n, dtype=torch.long)
    if stratify is None:
        fold_of[perm] = torch.arange(n) % k
    else:
        labels = stratify.reshape(n)[perm]
        # Stable sort by class keeps the shuffled order within each class.
        order = torch.sort(labels, stable=True).indices
        fold_of[perm[order]] = torch.arange(n) % k
    folds = []
    for f in range(k):
        test = torch.nonzero(fold_of == f).squeeze(1)
        train = torch.nonzero(fold_of != f).squeeze(1)
        folds.append((train, test))
    return folds


@dataclass(frozen=True, kw_only=True)
class CVScores:
    """Held-out score per site: mean over folds, its standard error, and each fold's value.

    metric is "accuracy" (logistic; for multilabel the mean per-label accuracy) or
    "r2" (ridge; R² averaged uniformly over outputs, as sklearn's r2_score).
    """

    metric: str
    mean: Float[Tensor, " sites"]
    se: Float[Tensor, " sites"]
    per_fold: Float[Tensor, "folds sites"]


def _summarise(metric: str, per_fold: Tensor) -> CVScores:
    k = per_fold.shape[0]
    se = per_fold.std(dim=0, unbiased=True) / k**0.5 if k > 1 else torch.zeros_like(per_fold[0])
    return CVScores(metric=metric, mean=per_fold.mean(0), se=se, per_fold=per_fold)


def _r2(pred: Tensor, y: Tensor) -> Tensor:
    """R² per site averaged over outputs; pred [s, n, out], y [n, out]."""
    ss_res = (pred - y[None]).pow(2).sum(1)
    ss_tot = (y - y.mean(0, keepdim=True)).pow(2).sum(0)[None]
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-300), torch.zeros_like(ss_res))
    return r2.mean(-1)


def cross_validate(
    features: Float[Tensor, "sites n d"],
    y: Tensor,
    *,
    kind: ProbeKind = "logistic",
    C: float = 1.0,
    alpha: float = 1.0,
    k: int = 5,
    seed: int = 0,
    stratified: bool = True,
    n_classes: int | None = None,
) -> CVScores:
    """k-fold held-out accuracy (logistic, multilabel) or R² (ridge) for every site."""
    if kind not in get_args(ProbeKind):
        raise ConfigError("kind", f"got {kind!r}", allowed(get_args(ProbeKind)))
    n = features.shape[1]
    if y.shape[0] != n:
        raise ConfigError("y", f"has {y.shape[0]} rows, features have {n}")
    strat = y if (stratified and kind == "logistic") else None
    if kind == "logistic" and n_classes is None:
        n_classes = int(y.max()) + 1
    scores = []
    for train, test in kfold_indices(n, k=k, seed=seed, stratify=strat):
        std = standardize(features[:, train])
        x_train, x_test = std(features[:, train]), std(features[:, test])
        if kind == "ridge":
            y_f = y.to(torch.float64)
            y_f = y_f[:, None] if y_f.ndim == 1 else y_f
            probe = fit_ridge(x_train, y_f[train], alpha=alpha)
            scores.append(_r2(probe.predict(x_test), y_f[test]))
        elif kind == "multilabel":
            y2 = y[:, None] if y.ndim == 1 else y
            probe = fit_multilabel(x_train, y2[train], C=C)
            pred = probe.predict(x_test)
            scores.append((pred == y2[test].bool()[None]).to(torch.float64).mean((1, 2)))
        else:
            probe = fit_logistic(x_train, y[train], C=C, n_classes=n_classes)
            pred = probe.predict(x_test)
            if probe.kind == "binary":
                pred = pred[..., 0].long()
            scores.append((pred == y[test][None]).to(torch.float64).mean(1))
    metric = "r2" if kind == "ridge" else "accuracy"
    return _summarise(metric, torch.stack(scores))


def majority_baseline(
    y: Tensor, *, kind: ProbeKind = "logistic", k: int = 5, seed: int = 0, stratified: bool = True
) -> CVScores:
    """The constant predictor's held-out score on the same folds (one value, sites = 1).

    logistic: the training fold's majority class; multilabel: each label's training
    majority; ridge: the training mean (R² ≤ 0).
    """
    n = y.shape[0]
    strat = y if (stratified and kind == "logistic") else None
    scores = []
    for train, test in kfold_indices(n, k=k, seed=seed, stratify=strat):
        if kind == "ridge":
            y_f = y.to(torch.float64)
            y_f = y_f[:, None] if y_f.ndim == 1 else y_f
            pred = y_f[train].mean(0, keepdim=True).expand(len(test), -1)[None]
            scores.append(_r2(pred, y_f[test]))
        elif kind == "multilabel":
            y2 = (y[:, None] if y.ndim == 1 else y).bool()
            maj = y2[train].to(torch.float64).mean(0) > 0.5
            scores.append((y2[test] == maj[None]).to(torch.float64).mean()[None])
        else:
            maj = torch.mode(y[train]).values
            scores.append((y[test] == maj).to(torch.float64).mean()[None])
    return _summarise("r2" if kind == "ridge" else "accuracy", torch.stack(scores))
