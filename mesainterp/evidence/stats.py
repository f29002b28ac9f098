"""Statistics of the battery: bootstrap weights, corrected margins, Holm, intervals.

The resamples, intervals, R² and Holm are those of `mesainterp.stats` (one
bootstrap for the package); this module adds what only the battery needs: the
weighted scores of several arrays on shared resamples, the bootstrap tail p and
the p of a result known only by its interval.

Functions: `bootstrap_weights`, `weighted_scores`, `bootstrap_mean`,
`bootstrap_r2`, `r2_score`, `one_sided_p`, `holm`, `normal_p_from_interval`.

The verdict method (stated in every scorecard, see `CORRECTION`):
- every score (accuracy, per-example AUC, R²) is recomputed on `n_boot`
  multinomial resamples of the examples, the same resamples for the model, for
  every control and every baseline (a paired bootstrap);
- per layer (and declared position) the margin over the best control is taken
  draw by draw: margin_b = score_b - max over controls of control_b;
- the one-sided p-value of "margin <= threshold" is the bootstrap tail
  (1 + #{margin_b <= threshold}) / (1 + n_boot); the smallest p over the
  layers/positions searched is multiplied by their number (Bonferroni: the
  selection of the best cell is paid for), and the reported lower bound is the
  alpha / cells quantile of the selected cell's margin;
- across the tests of one battery the p-values are Holm-adjusted, and a test
  passes only if its adjusted p <= alpha.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import ConfigError, allowed
from mesainterp.stats import (
    bootstrap_mean,
    bootstrap_r2,
    holm_adjust,
    normal_quantile,
    r2_score,
    resample_counts,
    resample_indices,
)

__all__ = [
    "ALPHA",
    "CORRECTION",
    "SCORE_METRICS",
    "ScoreMetric",
    "bootstrap_mean",
    "bootstrap_r2",
    "bootstrap_weights",
    "holm",
    "normal_p_from_interval",
    "one_sided_p",
    "r2_score",
    "weighted_scores",
]

ALPHA = 0.05
# What a per-example outcome is scored as (see `weighted_scores`).
ScoreMetric = Literal["accuracy", "auc", "r2"]
SCORE_METRICS: tuple[str, ...] = get_args(ScoreMetric)
CORRECTION = (
    "paired percentile bootstrap over examples; per test, Bonferroni over the layers and"
    " positions searched (lower bound at alpha/cells); across tests, Holm at alpha=0.05"
)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> Float[Tensor, "boot n"]:
    """Multinomial resample counts [n_boot, n] (each row sums to n), seeded: the
    resamples of `mesainterp.stats.bootstrap` with the same seed."""
    return resample_counts(resample_indices(n, n_boot, seed))


def weighted_scores(
    values: Float[Tensor, "rows n"],
    weights: Float[Tensor, "boot n"],
    *,
    metric: ScoreMetric,
    y: Float[Tensor, " n"] | None = None,
) -> Float[Tensor, "rows boot"]:
    """Each row's score under each resample.

    metric "accuracy" / "auc": `values` are per-example outcomes (correct, AUC),
    the score is their weighted mean. metric "r2": `values` are per-example
    squared errors and `y` the targets; the score is 1 - SS_res / SS_tot.
    """
    if metric not in SCORE_METRICS:
        raise ConfigError("metric", f"got {metric!r}", allowed(SCORE_METRICS))
    v = values.double()
    total = weights.sum(1)
    if metric != "r2":
        return (v @ weights.T) / total[None]
    if y is None:
        raise ConfigError("y", "required for metric 'r2' (the targets of the squared errors)")
    yd = y.double()
    mean = (weights @ yd) / total
    ss_tot = (weights @ (yd * yd)) - total * mean * mean
    return 1 - (v @ weights.T) / ss_tot.clamp_min(1e-300)[None]


def one_sided_p(draws: Float[Tensor, "... boot"], threshold: float) -> Float[Tensor, "..."]:
    """Bootstrap p-value of "the statistic is <= threshold": (1 + #draws <= t) / (1 + B)."""
    b = draws.shape[-1]
    return (1 + (draws <= threshold).sum(-1).double()) / (1 + b)


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (monotone, capped at 1), in input order."""
    return [float(p) for p in holm_adjust(pvalues)]


def normal_p_from_interval(
    value: float, low: float, high: float, threshold: float, confidence: float = 0.95
) -> float:
    """One-sided p of "value <= threshold" from a symmetric normal reading of its interval."""
    if not all(math.isfinite(x) for x in (value, low, high)):
        return 1.0
    se = (high - low) / (2 * normal_quantile(confidence))
    if se <= 0:
        return 0.0 if value > threshold else 1.0
    return 0.5 * math.erfc((value - threshold) / (se * math.sqrt(2)))
