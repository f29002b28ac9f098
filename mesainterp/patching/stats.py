"""Normalising patching effects and seeded bootstrap confidence intervals.

The normalised effect of a site is

    (mean patched - mean corrupted) / (mean clean - mean corrupted)

so 0 is the corrupted baseline and 1 the clean run, in either direction. It is a
ratio of means, not a mean of per-example ratios (those explode where an example's
clean and corrupted values nearly agree). The bootstrap resamples examples and
recomputes the whole ratio, with one seeded generator, so the intervals are
reproducible.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import MesaInterpError

__all__ = ["bootstrap_normalised", "normalised_effect"]

_TINY = 1e-12


def normalised_effect(
    patched: Float[Tensor, "sites batch"],
    clean: Float[Tensor, " batch"],
    corrupted: Float[Tensor, " batch"],
) -> Float[Tensor, " sites"]:
    """Ratio-of-means normalisation of every site's per-example values."""
    gap = clean.mean() - corrupted.mean()
    if gap.abs() < _TINY:
        return torch.full((patched.shape[0],), float("nan"), dtype=patched.dtype)
    return (patched.mean(dim=1) - corrupted.mean()) / gap


def bootstrap_normalised(
    patched: Float[Tensor, "sites batch"],
    clean: Float[Tensor, " batch"],
    corrupted: Float[Tensor, " batch"],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[Float[Tensor, " sites"], Float[Tensor, " sites"]]:
    """Percentile bootstrap interval (low, high) of the normalised effect of every site."""
    if not 0 < confidence < 1:
        raise MesaInterpError(f"confidence: expected a value in (0, 1), got {confidence}")
    if n_boot < 1:
        raise MesaInterpError(f"n_boot: expected a positive int, got {n_boot}")
    n = patched.shape[1]
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (n_boot, n), generator=generator)
    # A resample is a count vector; means become one matrix product for all sites.
    counts = torch.zeros(n_boot, n, dtype=torch.float64)
    counts.scatter_add_(1, idx, torch.ones(n_boot, n, dtype=torch.float64))
    weights = counts / n
    p = patched.detach().double().cpu() @ weights.t()  # [sites, n_boot]
    c = weights @ clean.detach().double().cpu()  # [n_boot]
    k = weights @ corrupted.detach().double().cpu()
    gap = c - k
    gap = torch.where(gap.abs() < _TINY, torch.full_like(gap, float("nan")), gap)
    ratios = (p - k) / gap  # [sites, n_boot]
    alpha = (1 - confidence) / 2
    q = torch.tensor([alpha, 1 - alpha], dtype=torch.float64)
    bounds = torch.nanquantile(ratios, q, dim=1)
    return bounds[0].to(patched.dtype), bounds[1].to(patched.dtype)
