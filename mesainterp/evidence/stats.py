"""Seeded percentile-bootstrap intervals over examples, and R².

The probe sweeps (`mesainterp.probes`) give a fold mean and standard error per
site; the scorecard reports a bootstrap interval over examples instead, from
every example's own held-out outcome.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["bootstrap_mean", "bootstrap_r2", "r2_score"]


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
