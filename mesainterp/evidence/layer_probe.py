"""One label probed at one position in every layer, with its controls and a bootstrap CI.

The shared step of the goal, look-ahead and iterative tests. Probes are
closed-form ridge fits on standardised features (for class labels: one-hot
targets, predicted class = argmax, sklearn's `RidgeClassifier`), batched over all
layers and fold by fold, so every example's held-out prediction at every layer
comes out of one pass: the best layer's bootstrap interval needs no refit. The
logistic probes of `mesainterp.probes` are the thorough version; these are the
ones cheap enough to run on many models (the tests check both agree on clear cases).

Controls, on the same folds: the random-init twin's activations, shuffled labels
(one seeded permutation) and the constant predictor (training-fold majority class
or mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.stats import bootstrap_mean, bootstrap_r2
from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.linear import fit_ridge, standardize

__all__ = ["LayerProbe", "cv_predictions", "label_for", "probe_by_layer", "scores_of"]

RIDGE_ALPHA = 1.0


@dataclass(frozen=True, kw_only=True)
class LayerProbe:
    """Per-layer held-out scores of one probe (layer order) and the best layer's CI.

    predictions: [layers, n] held-out predictions of the model's probe; y: [n] labels.
    """

    target: str
    metric: str
    pos: int
    values: list[float]
    random_init: list[float]
    shuffled: list[float]
    majority: float
    best_layer: int
    value: float
    ci: tuple[float, float]
    n: int
    predictions: Tensor
    y: Tensor

    @property
    def best_control(self) -> tuple[float, str]:
        """The strongest control over all layers, and its name."""
        candidates = {
            "random-init twin": max(self.random_init),
            "shuffled labels": max(self.shuffled),
            "majority class" if self.metric == "accuracy" else "mean": self.majority,
        }
        name = max(candidates, key=lambda k: candidates[k])
        return candidates[name], name

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "metric": self.metric,
            "pos": self.pos,
            "probe": "ridge (one-hot targets for classes), standardised features",
            "by_layer": self.values,
            "random_init_by_layer": self.random_init,
            "shuffled_by_layer": self.shuffled,
            "majority": self.majority,
            "best_layer": self.best_layer,
            "n": self.n,
        }


def label_for(
    labels: dict[str, Tensor], target: str, label_column: int | None
) -> tuple[Tensor, Tensor, bool]:
    """(usable-row mask [n], labels of those rows, is_class): class ids are compacted
    to 0..K-1 and -1 (absent) dropped; float labels keep finite rows."""
    if target not in labels:
        raise MesaInterpError(f"target: no label {target!r} (allowed: {', '.join(sorted(labels))})")
    y = labels[target]
    if label_column is not None:
        if y.ndim != 2 or not 0 <= label_column < y.shape[1]:
            raise MesaInterpError(f"label_column: {label_column} is not a column of {target!r}")
        y = y[:, label_column]
    if y.ndim != 1:
        raise MesaInterpError(f"target: {target!r} must be one value per example")
    if y.dtype.is_floating_point:
        keep = torch.isfinite(y)
        return keep, y[keep].double(), False
    keep = y >= 0
    return keep, torch.unique(y[keep].long(), return_inverse=True)[1], True


def cv_predictions(
    features: Float[Tensor, "sites n d"],
    y: Shaped[Tensor, " n"],
    *,
    is_class: bool,
    folds: int,
    seed: int,
    alpha: float = RIDGE_ALPHA,
) -> Tensor:
    """Held-out predictions [sites, n] of ridge probes on every site at once.

    Classes: one-hot targets, argmax prediction; values: the ridge prediction.
    Features are standardised on each training fold only.
    """
    n = features.shape[1]
    n_classes = int(y.max()) + 1 if is_class else 1
    out = torch.zeros(features.shape[0], n, dtype=torch.long if is_class else torch.float64)
    for train, test in kfold_indices(n, k=folds, seed=seed, stratify=y if is_class else None):
        std = standardize(features[:, train])
        if is_class:
            target = torch.nn.functional.one_hot(y[train], n_classes).double()
        else:
            target = y[train].double()[:, None]
        probe = fit_ridge(std(features[:, train]), target, alpha=alpha)
        pred = probe.predict(std(features[:, test]))
        out[:, test] = pred.argmax(-1) if is_class else pred[..., 0]
    return out


def scores_of(
    pred: Shaped[Tensor, "sites n"], y: Shaped[Tensor, " n"], *, is_class: bool
) -> Float[Tensor, " sites"]:
    """Held-out accuracy or R² per site from predictions [sites, n]."""
    if is_class:
        return (pred == y[None]).double().mean(1)
    ss_tot = (y - y.mean()).pow(2).sum().clamp_min(1e-300)
    return 1 - (pred - y[None]).pow(2).sum(1) / ss_tot


def _constant(y: Tensor, *, is_class: bool, folds: int, seed: int) -> float:
    """Held-out score of the training-fold majority class (or mean)."""
    pred = torch.zeros_like(y)
    for train, test in kfold_indices(
        y.numel(), k=folds, seed=seed, stratify=y if is_class else None
    ):
        pred[test] = torch.mode(y[train]).values if is_class else y[train].mean()
    return float(scores_of(pred[None], y, is_class=is_class)[0])


def probe_by_layer(
    inputs: EvidenceInputs,
    target: str,
    *,
    label_column: int | None,
    pos: int,
    cfg: EvidenceConfig,
) -> LayerProbe:
    """Probe `target` (column `label_column`) at `pos` in every layer, with controls."""
    data, twin = inputs.at(pos), inputs.at(pos, twin=True)
    keep, y, is_class = label_for(data.labels, target, label_column)
    if int(keep.sum()) < 2 * cfg.folds:
        raise MesaInterpError(f"target: too few examples carry {target!r}")
    folds, seed = cfg.folds, cfg.seed
    pred = cv_predictions(data.features[:, keep], y, is_class=is_class, folds=folds, seed=seed)
    twin_pred = cv_predictions(twin.features[:, keep], y, is_class=is_class, folds=folds, seed=seed)
    perm = torch.randperm(y.numel(), generator=torch.Generator().manual_seed(cfg.seed + 1))
    y_shuffled = y[perm]
    shuffled = scores_of(
        cv_predictions(
            data.features[:, keep], y_shuffled, is_class=is_class, folds=folds, seed=seed
        ),
        y_shuffled,
        is_class=is_class,
    )
    values = scores_of(pred, y, is_class=is_class)
    best = int(values.argmax())
    if is_class:
        ci = bootstrap_mean((pred[best] == y).double(), n_boot=cfg.n_boot, seed=cfg.seed)
    else:
        ci = bootstrap_r2(y, pred[best], n_boot=cfg.n_boot, seed=cfg.seed)
    name = target if label_column is None else f"{target}[{label_column}]"
    return LayerProbe(
        target=name,
        metric="accuracy" if is_class else "r2",
        pos=pos,
        values=values.tolist(),
        random_init=scores_of(twin_pred, y, is_class=is_class).tolist(),
        shuffled=shuffled.tolist(),
        majority=_constant(y, is_class=is_class, folds=folds, seed=seed),
        best_layer=best,
        value=float(values[best]),
        ci=ci,
        n=int(y.numel()),
        predictions=pred,
        y=y,
    )
