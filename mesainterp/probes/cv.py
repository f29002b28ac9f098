"""Seeded k-fold cross-validation of batched probes: held-out score per site ± SE.

Folds are a loop of k (not of sites): each fold fits every site at once. Features
are standardised on the training rows of each fold only. Sites stream through in
chunks under a memory budget (`chunk_sites`); the scores do not depend on it.

Two regimes. Tall (more training rows than columns): every fold's standardised
Gram comes from one pass over the data, and ridge solves and the logistic
preconditioner use it. Wide (fewer, as with d_model 768 and a few hundred
examples): d×d matrices would cost O(n·d² + d³) a site and fold for what O(n²·d)
does, so ridge solves each fold's n×n dual and the logistic fit uses the
diagonal preconditioner, from the folds' column moments alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor

from mesainterp.errors import ConfigError, allowed
from mesainterp.probes.chunks import site_chunks
from mesainterp.probes.gram import column_moments, gram_matrix
from mesainterp.probes.lbfgs import fit_lbfgs, working_bytes
from mesainterp.probes.linear import fit_ridge, label_matrix, ridge_solve
from mesainterp.probes.logistic_objective import FoldView
from mesainterp.progress import progress_bar
from mesainterp.shapes import shape_checked

__all__ = ["CVScores", "ProbeKind", "cross_validate", "kfold_indices", "majority_baseline"]

ProbeKind = Literal["logistic", "ridge", "multilabel"]


@shape_checked
def kfold_indices(
    n: int, *, k: int = 5, seed: int = 0, stratify: Shaped[Tensor, " n"] | None = None
) -> list[tuple[Int[Tensor, " _"], Int[Tensor, " _"]]]:
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


@dataclass(frozen=True, kw_only=True)
class _Fold:
    """One fold's rows in fold order (test rows are the slice [lo, hi)) and the
    training rows' standardisation, derived from the per-fold moments."""

    lo: int
    hi: int
    n_train: int
    mean: Tensor  # [s, d] training mean (shifted coordinates), float64
    scale: Tensor  # [s, d] training standard deviation, float64
    var: Tensor  # [s, d] training variance, float64
    gram: Tensor | None  # [s, d, d] Gram of the standardised training rows (tall only)


def _scale(var: Tensor, mean: Tensor) -> Tensor:
    """Zero-variance features keep scale 1, as in `standardize` and sklearn."""
    scale = var.sqrt()
    return torch.where(scale > 1e-12 * (1 + mean.abs()), scale, torch.ones_like(scale))


def _folds(xo: Tensor, bounds: list[tuple[int, int]]) -> list[_Fold]:
    """Standardised training Grams of every fold from one pass over the data.

    Each fold's XᵀX and column sums are computed once; a training set's moments
    are the total minus its test fold's, so k folds cost one Gram, not k−1 each.
    """
    grams = [gram_matrix(xo[:, lo:hi], dtype=torch.float64) for lo, hi in bounds]
    sums = [xo[:, lo:hi].sum(1).to(torch.float64) for lo, hi in bounds]
    gram_all, sum_all = torch.stack(grams).sum(0), torch.stack(sums).sum(0)
    n = xo.shape[1]
    out = []
    for (lo, hi), g_f, s_f in zip(bounds, grams, sums, strict=True):
        n_t = n - (hi - lo)
        mean = (sum_all - s_f) / n_t
        gram = gram_all - g_f - n_t * mean[:, :, None] * mean[:, None, :]
        var = gram.diagonal(dim1=1, dim2=2).clamp_min(0) / n_t
        scale = _scale(var, mean)
        gram = gram / (scale[:, :, None] * scale[:, None, :])
        out.append(_Fold(lo=lo, hi=hi, n_train=n_t, mean=mean, scale=scale, var=var, gram=gram))
    return out


def _wide_folds(xo: Tensor, bounds: list[tuple[int, int]]) -> list[_Fold]:
    """Every fold's training mean and scale from per-fold column sums and sums of
    squares (no Gram): O(n·d) a site."""
    sums, sqs = zip(*(column_moments(xo[:, lo:hi]) for lo, hi in bounds), strict=True)
    sum_all, sq_all = torch.stack(sums).sum(0), torch.stack(sqs).sum(0)
    n = xo.shape[1]
    out = []
    for (lo, hi), s_f, q_f in zip(bounds, sums, sqs, strict=True):
        n_t = n - (hi - lo)
        mean = (sum_all - s_f) / n_t
        var = ((sq_all - q_f) / n_t - mean.square()).clamp_min(0)
        scale = _scale(var, mean)
        out.append(_Fold(lo=lo, hi=hi, n_train=n_t, mean=mean, scale=scale, var=var, gram=None))
    return out


def _train_rows(t: Tensor, fold: _Fold, dim: int) -> Tensor:
    return torch.cat(
        [t.narrow(dim, 0, fold.lo), t.narrow(dim, fold.hi, t.shape[dim] - fold.hi)], dim
    )


def _wide_ridge_scores(xo: Tensor, yo: Tensor, folds: Iterable[_Fold], alpha: float) -> Tensor:
    """Held-out R² of standardise-then-ridge per fold, each fold in its n×n dual."""
    scores = []
    for f in folds:
        mean, scale = f.mean[:, None].to(xo.dtype), f.scale[:, None].to(xo.dtype)
        train = _train_rows(xo, f, 1).sub_(mean).div_(scale)  # a fresh copy
        probe = fit_ridge(train, _train_rows(yo, f, 0), alpha=alpha, chunk_sites=xo.shape[0])
        del train
        x_test = (xo[:, f.lo : f.hi] - mean) / scale
        pred = torch.baddbmm(
            probe.intercept[:, :, None], probe.coef.mT, x_test.mT.to(torch.float64)
        ).mT
        scores.append(_r2(pred, yo[f.lo : f.hi]))
    return torch.stack(scores)


def _ridge_scores(xo: Tensor, yo: Tensor, folds: list[_Fold], alpha: float, bar: Any) -> Tensor:
    """Held-out R² of standardise-then-ridge per fold, from Gram downdates only."""
    if folds[0].gram is None:
        return _wide_ridge_scores(xo, yo, bar(folds), alpha)
    yw = yo.to(xo.dtype)
    xy = [(yw[f.lo : f.hi].T @ xo[:, f.lo : f.hi]).transpose(1, 2).to(torch.float64) for f in folds]
    xy_all = torch.stack(xy).sum(0)
    scores = []
    for f, xy_f in bar(list(zip(folds, xy, strict=True))):
        y_train = _train_rows(yo, f, 0)
        y_mean = y_train.mean(0)
        rhs = (xy_all - xy_f - f.n_train * f.mean[:, :, None] * y_mean[None, None, :]) / f.scale[
            :, :, None
        ]
        assert f.gram is not None
        coef = ridge_solve(f.gram, rhs, alpha) / f.scale[:, :, None]  # back to raw units
        x_test = xo[:, f.lo : f.hi]
        pred = (x_test @ coef.to(xo.dtype)).to(torch.float64)
        pred += (y_mean[None, :] - (f.mean[:, None, :] @ coef).squeeze(1))[:, None, :]
        scores.append(_r2(pred, yo[f.lo : f.hi]))
    return torch.stack(scores)


def _logistic_scores(
    xo: Tensor,
    yo: Tensor,
    folds: list[_Fold],
    *,
    link: str,
    C: float,
    tol: float,
    bar: Any,
) -> Tensor:
    """Held-out accuracy per fold; each fold's fit warm-starts from the previous one."""
    scores = []
    theta: Tensor | None = None
    d = xo.shape[-1]
    for f in bar(folds):
        gram, diagonal = None, None
        if f.gram is not None:
            # Böhning's bound needs [X, 1]ᵀ[X, 1]; standardised columns sum to zero.
            gram = torch.zeros(xo.shape[0], d + 1, d + 1, dtype=torch.float64)
            gram[:, :d, :d] = f.gram
            gram[:, d, d] = f.n_train
        else:  # the standardised columns' moments: mean 0, Σx² = n·var/scale²
            diagonal = (torch.zeros_like(f.mean), f.n_train * f.var / f.scale.square())
        view = FoldView(mean=f.mean, scale=f.scale, held_out=(f.lo, f.hi))
        fit = fit_lbfgs(
            xo,
            _train_rows(yo, f, 0),
            link="softmax" if link == "softmax" else "sigmoid",
            C=C,
            tol=tol,
            max_iter=500,
            init=theta,
            gram=gram,
            view=view,
            diagonal=diagonal,
        )
        theta = fit.theta
        w, b = view.raw_coefficients(theta)
        z = torch.baddbmm(b[:, :, None], w.mT, xo[:, f.lo : f.hi].mT).mT
        truth = yo[f.lo : f.hi]
        if link == "softmax":
            scores.append((z.argmax(-1) == truth.argmax(-1)[None]).to(torch.float64).mean(1))
        else:
            scores.append(((z > 0) == truth.bool()[None]).to(torch.float64).mean((1, 2)))
    return torch.stack(scores)


@shape_checked
def cross_validate(
    features: Float[Tensor, "sites n d"],
    y: Shaped[Tensor, "n ..."],
    *,
    kind: ProbeKind = "logistic",
    C: float = 1.0,
    alpha: float = 1.0,
    k: int = 5,
    seed: int = 0,
    stratified: bool = True,
    n_classes: int | None = None,
    tol: float = 1e-4,
    progress: bool | None = None,
    chunk_sites: int | None = None,
) -> CVScores:
    """k-fold held-out accuracy (logistic, multilabel) or R² (ridge) for every site.

    Features are standardised on each fold's training rows, as a StandardScaler
    fitted per fold would. The data is copied once into fold order (shifted by its
    overall mean, so float32 Grams keep their digits); all folds' standardised
    Grams come from one pass over it. `tol` is the logistic solvers' gradient
    tolerance (sklearn's). `progress`: a bar over folds (None: on unless
    MESAINTERP_NO_PROGRESS is set). `chunk_sites`: sites per batch (None: as many
    as `chunks.MEMORY_BUDGET_BYTES` allows); the scores do not depend on it.
    y: class ids [n] (logistic), or [n, *] with each entry one 0/1 label
    (multilabel) or one output (ridge).
    """
    if kind not in get_args(ProbeKind):
        raise ConfigError("kind", f"got {kind!r}", allowed(get_args(ProbeKind)))
    for name, value in (("C", C), ("alpha", alpha)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ConfigError(name, f"expected a positive number, got {value!r}")
    n, d = features.shape[1], features.shape[2]
    y = _targets_of(y, kind, n)
    strat = y if (stratified and kind == "logistic") else None
    splits = kfold_indices(n, k=k, seed=seed, stratify=strat)
    order = torch.cat([test for _, test in splits])
    bounds, lo = [], 0
    for _, test in splits:
        bounds.append((lo, lo + len(test)))
        lo += len(test)
    work = torch.float64 if features.dtype == torch.float64 else torch.float32
    wide = n - min(hi - lo for lo, hi in bounds) < d + 1

    def bar(items: list[Any]) -> Any:
        return progress_bar(items, desc=f"{kind} probe folds", total=len(items), progress=progress)

    if kind == "ridge":
        y_f = y.to(torch.float64)
        yo = y_f[order] - y_f.mean(0, keepdim=True)
        link = ""
    elif kind == "multilabel":
        yo, link = y.to(work)[order], "sigmoid"
    else:
        if n_classes is None:
            n_classes = int(y.max()) + 1
        if n_classes <= 2:
            yo, link = (y == 1)[:, None].to(work)[order], "sigmoid"
        else:
            yo = torch.nn.functional.one_hot(y.long(), n_classes).to(work)[order]
            link = "softmax"
    out = yo.shape[1]
    itemsize = torch.finfo(work).bits // 8
    # The fold-ordered copy, then the Grams (tall) or a fold's training copy and
    # n×n dual (wide), then the logistic solver's own state.
    per_site = itemsize * n * d + (
        8 * (n * n * 2 + n * out) + itemsize * n * d if wide else 8 * (len(bounds) + 3) * d * d
    )
    if kind != "ridge":
        per_site += working_bytes(n, d, out, itemsize) if not wide else itemsize * 30 * d * out
    per_fold = []
    for chunk in site_chunks(features.shape[0], per_site, chunk_sites):
        x = features[chunk].to(work)
        # One copy, shifted in place: a second fresh buffer of this size costs its page faults.
        xo = x.index_select(1, order).sub_(x.mean(1, keepdim=True))
        del x
        folds = _wide_folds(xo, bounds) if wide else _folds(xo, bounds)
        if kind == "ridge":
            per_fold.append(_ridge_scores(xo, yo, folds, float(alpha), bar))
        else:
            per_fold.append(
                _logistic_scores(xo, yo, folds, link=link, C=float(C), tol=tol, bar=bar)
            )
        del xo, folds
    return _summarise("r2" if kind == "ridge" else "accuracy", torch.cat(per_fold, dim=1))


def _targets_of(y: Tensor, kind: ProbeKind, n: int) -> Tensor:
    """Labels as the probe kind reads them, or a one-line refusal naming their shape:
    logistic, integer class ids [n]; multilabel, 0/1 [n, *]; ridge, numbers [n, *]
    (trailing dimensions flattened into outputs)."""
    if kind == "logistic":
        if y.ndim != 1 or y.shape[0] != n or y.dtype.is_floating_point:
            raise ConfigError(
                "y",
                f"logistic probes need integer class ids [n={n}], got {tuple(y.shape)} {y.dtype}"
                " (use kind='multilabel' or 'ridge' for a label with more dimensions)",
            )
        return y
    y2 = label_matrix(y, n)
    if kind == "multilabel" and not bool(((y2 == 0) | (y2 == 1)).all()):
        raise ConfigError("y", f"multilabel targets of shape {tuple(y.shape)} must be 0/1 or bool")
    return y2


@shape_checked
def majority_baseline(
    y: Shaped[Tensor, "n ..."],
    *,
    kind: ProbeKind = "logistic",
    k: int = 5,
    seed: int = 0,
    stratified: bool = True,
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
            y_f = y_f.reshape(n, -1)
            pred = y_f[train].mean(0, keepdim=True).expand(len(test), -1)[None]
            scores.append(_r2(pred, y_f[test]))
        elif kind == "multilabel":
            y2 = y.reshape(n, -1).bool()
            maj = y2[train].to(torch.float64).mean(0) > 0.5
            scores.append((y2[test] == maj[None]).to(torch.float64).mean()[None])
        else:
            maj = torch.mode(y[train]).values
            scores.append((y[test] == maj).to(torch.float64).mean()[None])
    return _summarise("r2" if kind == "ridge" else "accuracy", torch.stack(scores))
