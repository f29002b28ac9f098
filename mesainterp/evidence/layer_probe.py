"""One label probed at every position and layer, with its controls, as per-example outcomes.

The shared step of the goal and iterative tests. Probes are closed-form ridge
fits on standardised features (for class labels: one-hot targets, predicted
class = argmax, sklearn's `RidgeClassifier`), batched over all sites and fold by
fold, so every example's held-out prediction at every site comes out of one
pass. The logistic probes of `mesainterp.probes` are the thorough version; these
are cheap enough to run on many models, positions and twins.

`probe_reading` gives, at one declared position, the per-example outcomes of the
model (every layer) and of every control on the same folds: each random-init
twin, shuffled labels (one seeded permutation), the training-fold majority
class (or mean), and every search-free baseline that does not reveal the target.
`position_table` gives the model's held-out score at every position and layer.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.baselines import search_free_baselines
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.margin import Outcomes, Reading
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.linear import fit_ridge, standardize

__all__ = [
    "RIDGE_ALPHA",
    "cv_predictions",
    "label_for",
    "position_role",
    "position_table",
    "probe_reading",
    "scores_of",
]

RIDGE_ALPHA = 1.0


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


def _outcomes(pred: Tensor, y: Tensor, *, is_class: bool) -> Outcomes:
    if is_class:
        return Outcomes(metric="accuracy", values=(pred == y[None]).double())
    return Outcomes(metric="r2", values=(pred - y[None]).pow(2), y=y)


def _constant(y: Tensor, *, is_class: bool, folds: int, seed: int) -> Tensor:
    """Held-out predictions [1, n] of the training-fold majority class (or mean)."""
    pred = torch.zeros_like(y)
    for train, test in kfold_indices(
        y.numel(), k=folds, seed=seed, stratify=y if is_class else None
    ):
        pred[test] = torch.mode(y[train]).values if is_class else y[train].mean()
    return pred[None]


def probe_reading(
    inputs: EvidenceInputs,
    target: str,
    *,
    label_column: int | None,
    pos: int,
    cfg: EvidenceConfig,
    keep: Tensor | None = None,
) -> Reading:
    """Model and controls for `target` (column `label_column`) at `pos` (see the docstring).

    keep: an extra row mask [n] (rows whose label is absent are always dropped).
    """
    usable, _, is_class = label_for(inputs.data.labels, target, label_column)
    if keep is not None:
        usable = usable & keep
    _, y, is_class = label_for(
        {target: _column(inputs, target, label_column)[usable]}, target, None
    )
    if int(usable.sum()) < 2 * cfg.folds:
        raise MesaInterpError(f"target: too few examples carry {target!r}")
    folds, seed = cfg.folds, cfg.seed

    def predict(features: Tensor, labels: Tensor) -> Tensor:
        return cv_predictions(features, labels, is_class=is_class, folds=folds, seed=seed)

    def run(features: Tensor, labels: Tensor) -> Outcomes:
        return _outcomes(predict(features, labels), labels, is_class=is_class)

    controls: dict[str, Outcomes] = {}
    for i in range(len(inputs.twin_data)):
        controls[f"random-init seed {i}"] = run(inputs.at(pos, twin=i).features[:, usable], y)
    model_x = inputs.at(pos).features[:, usable]
    perm = torch.randperm(y.numel(), generator=torch.Generator().manual_seed(cfg.seed + 1))
    # Score the shuffled probe against the true labels: it keeps the label marginals
    # and breaks the link to the activations.
    shuffled_pred = predict(model_x, y[perm])
    controls["shuffled labels"] = _outcomes(shuffled_pred, y, is_class=is_class)
    constant = _constant(y, is_class=is_class, folds=folds, seed=seed)
    controls["majority class" if is_class else "mean"] = _outcomes(constant, y, is_class=is_class)
    name = target if label_column is None else f"{target}[{label_column}]"
    for base in search_free_baselines(inputs):
        if target in base.reveals or name in base.reveals:
            continue
        controls[f"baseline: {base.name}"] = run(base.features[usable][None].float(), y)
    return Reading(pos=pos, model=run(model_x, y), controls=controls)


def _column(inputs: EvidenceInputs, target: str, label_column: int | None) -> Tensor:
    y = inputs.data.labels[target]
    return y if label_column is None else y[:, label_column]


def position_role(inputs: EvidenceInputs, pos: int) -> str:
    """What a position holds: "goal token", ":", "answer k" (reads path[k]), or "prompt"."""
    if pos == inputs.goal_pos:
        return "goal token"
    if pos == inputs.query_pos:
        return ":"
    if pos > inputs.query_pos:
        return f"answer {pos - inputs.query_pos - 1}"
    return "prompt"


def position_table(
    inputs: EvidenceInputs,
    target: str,
    *,
    label_column: int | None,
    cfg: EvidenceConfig,
) -> list[dict[str, Any]]:
    """The model's held-out score of `target` at every collected position and layer."""
    usable, y, is_class = label_for(inputs.data.labels, target, label_column)
    positions = inputs.positions
    feats = inputs.features_at(positions)[:, :, usable]  # [P, L, n, d]
    p, n_layers = feats.shape[0], feats.shape[1]
    pred = cv_predictions(
        feats.reshape(p * n_layers, *feats.shape[2:]), y,
        is_class=is_class, folds=cfg.folds, seed=cfg.seed,
    )  # fmt: skip
    scores = scores_of(pred, y, is_class=is_class).reshape(p, n_layers)
    return [
        {
            "pos": pos,
            "role": position_role(inputs, pos),
            "by_layer": scores[i].tolist(),
            "best_layer": int(scores[i].argmax()),
            "best": float(scores[i].max()),
        }
        for i, pos in enumerate(positions)
    ]
