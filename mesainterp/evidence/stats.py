"""Statistics of the battery: bootstrap weights, corrected margins, Holm, intervals.

Kept inside `mesainterp.evidence` so the battery has no dependency on a shared
statistics module; every function is a pure function of tensors and floats, so
moving them later is an import change.

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

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "ALPHA",
    "CORRECTION",
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
CORRECTION = (
    "paired percentile bootstrap over examples; per test, Bonferroni over the layers and"
    " positions searched (lower bound at alpha/cells); across tests, Holm at alpha=0.05"
)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> Float[Tensor, "boot n"]:
    """Multinomial resample counts [n_boot, n] (each row sums to n), seeded."""
    idx = torch.randint(0, n, (n_boot, n), generator=torch.Generator().manual_seed(seed))
    w = torch.zeros(n_boot, n, dtype=torch.float64)
    return w.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))


def weighted_scores(
    values: Float[Tensor, "rows n"],
    weights: Float[Tensor, "boot n"],
    *,
    metric: str,
    y: Float[Tensor, " n"] | None = None,
) -> Float[Tensor, "rows boot"]:
    """Each row's score under each resample.

    metric "accuracy" / "auc": `values` are per-example outcomes (correct, AUC),
    the score is their weighted mean. metric "r2": `values` are per-example
    squared errors and `y` the targets; the score is 1 - SS_res / SS_tot.
    """
    v = values.double()
    total = weights.sum(1)
    if metric != "r2":
        return (v @ weights.T) / total[None]
    if y is None:
        raise ValueError("r2 needs y")
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
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def normal_p_from_interval(
    value: float, low: float, high: float, threshold: float, confidence: float = 0.95
) -> float:
    """One-sided p of "value <= threshold" from a symmetric normal reading of its interval."""
    if not all(math.isfinite(x) for x in (value, low, high)):
        return 1.0
    z = 0.5 * (1 + confidence)
    se = (high - low) / (2 * _probit(z))
    if se <= 0:
        return 0.0 if value > threshold else 1.0
    return 0.5 * math.erfc((value - threshold) / (se * math.sqrt(2)))


def _probit(p: float) -> float:
    return float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))


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
