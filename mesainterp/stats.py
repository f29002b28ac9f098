"""The statistics every measurement shares: Wilson intervals, one seeded bootstrap,
the gap normalisation of effects, R², and Holm's multiple-comparison correction.

A leaf module (torch and the standard library only), so every layer can import it.

- `wilson_interval(k, n, confidence=0.95)`: the Wilson score interval of a binomial
  proportion. The z is the exact normal quantile of the confidence (1.959964 for
  95%). With n = 0 it is (0, 1): no trials leave every proportion possible, and it
  is the limit of the interval as n shrinks to 0.
- `bootstrap(statistic, n, ...)`: the percentile bootstrap over n examples. One
  seeded `torch.Generator` draws all resamples as an index matrix [n_boot, n];
  `statistic` maps that matrix to one value per resample ([..., n_boot], vectorised),
  so the same engine serves a mean, a ratio of means, an R² or a rise between
  layers. Resamples where the statistic is NaN (e.g. a vanished gap) are dropped.
  `bootstrap_mean`, `bootstrap_r2` and `bootstrap_normalised` are its common uses.
  `resample_indices` and `resample_counts` give the same resamples to a caller
  that scores several arrays on them (a paired bootstrap: model and controls).
- `normalise_by_gap(raw, clean, corrupted)`: an effect in units of the clean -
  corrupted gap (0 = corrupted, 1 = clean). Exact patching effects and attribution
  estimates of them go through this one function wherever they are compared.
- `pearson(a, b)`, `spearman(a, b)`: correlations (Spearman with tie-averaged
  ranks, as scipy), NaN when either side is constant.
- `holm_adjust(p)`: Holm-Bonferroni adjusted p-values (reject where <= alpha).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import MesaInterpError
from mesainterp.shapes import shape_checked

__all__ = [
    "Statistic",
    "bootstrap",
    "bootstrap_mean",
    "bootstrap_normalised",
    "bootstrap_r2",
    "holm_adjust",
    "normal_quantile",
    "normalise_by_gap",
    "normalised_effect",
    "pearson",
    "r2_score",
    "resample_counts",
    "resample_indices",
    "spearman",
    "wilson_interval",
]

# Below this |clean - corrupted| gap a normalised effect is undefined (NaN).
_TINY_GAP = 1e-12

# statistic(indices [n_boot, n]) -> one value per resample [..., n_boot].
Statistic = Callable[[Int[Tensor, "boot n"]], Float[Tensor, "... boot"]]


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise MesaInterpError(f"confidence: expected a number in (0, 1), got {confidence!r}")


def normal_quantile(confidence: float) -> float:
    """The two-sided standard-normal z of `confidence` (1.959964 for 0.95)."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) of `successes` out of `n` trials.

    Sane at 0 and n successes (never outside [0, 1]); (0.0, 1.0) when n = 0.
    """
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MesaInterpError(f"{name}: expected an int >= 0, got {value!r}")
    if successes > n:
        raise MesaInterpError(f"successes: {successes} exceeds the number of trials n={n}")
    z = normal_quantile(confidence)
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def resample_indices(n: int, n_boot: int, seed: int) -> Int[Tensor, "boot n"]:
    """All bootstrap resamples of n examples at once, from one seeded generator."""
    return torch.randint(0, n, (n_boot, n), generator=torch.Generator().manual_seed(seed))


def resample_counts(indices: Int[Tensor, "boot n"]) -> Float[Tensor, "boot n"]:
    """How often each example is drawn in each resample (float64, rows sum to n):
    a weighted mean over these counts is the resample's mean, for any number of
    arrays at once, as one matrix product."""
    counts = torch.zeros(indices.shape, dtype=torch.float64)
    return counts.scatter_add_(1, indices, torch.ones(indices.shape, dtype=torch.float64))


def bootstrap(
    statistic: Statistic,
    n: int,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[Float[Tensor, "..."], Float[Tensor, "..."]]:
    """Percentile bootstrap interval (low, high) of `statistic` over `n` examples.

    `statistic` receives every resample's indices [n_boot, n] and returns the
    statistic per resample, last axis n_boot (leading axes, e.g. sites, are kept).
    NaN resamples are ignored; all-NaN gives NaN. n = 0 gives NaN bounds.
    """
    _check_confidence(confidence)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise MesaInterpError(f"n_boot: expected a positive int, got {n_boot!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise MesaInterpError(f"n: expected an int >= 0, got {n!r}")
    if n == 0:
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        return nan, nan
    values = statistic(resample_indices(n, n_boot, seed)).double()
    if values.shape[-1:] != (n_boot,):
        raise MesaInterpError(
            f"statistic: expected one value per resample (last axis {n_boot}),"
            f" got shape {tuple(values.shape)}"
        )
    alpha = (1 - confidence) / 2
    q = torch.tensor([alpha, 1 - alpha], dtype=torch.float64)
    bounds = torch.nanquantile(values, q, dim=-1)
    return bounds[0], bounds[1]


def bootstrap_mean(
    values: Float[Tensor, " n"],
    *,
    n_boot: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-example values (NaNs dropped)."""
    v = values.detach().double().cpu().flatten()
    v = v[torch.isfinite(v)]
    low, high = bootstrap(
        lambda idx: v[idx].mean(dim=1), v.numel(), n_boot=n_boot, confidence=confidence, seed=seed
    )
    return float(low), float(high)


def r2_score(y: Float[Tensor, " n"], pred: Float[Tensor, " n"]) -> float:
    """R² of `pred` against `y` (1 = identical, 0 = no better than y's mean; NaN if y is constant)."""
    y, pred = y.detach().double().cpu(), pred.detach().double().cpu()
    ss_tot = float((y - y.mean()).pow(2).sum())
    if ss_tot <= 0:
        return float("nan")
    return 1.0 - float((y - pred).pow(2).sum()) / ss_tot


def bootstrap_r2(
    y: Float[Tensor, " n"],
    pred: Float[Tensor, " n"],
    *,
    n_boot: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of R² = 1 - SS_res / SS_tot, resampling examples
    (a resample whose y is constant has no R² and is dropped)."""
    y, pred = y.detach().double().cpu(), pred.detach().double().cpu()
    if y.shape != pred.shape or y.ndim != 1:
        raise MesaInterpError(
            f"pred: expected the shape of y {tuple(y.shape)} (1-D), got {tuple(pred.shape)}"
        )

    def r2(idx: Tensor) -> Tensor:
        ys, ps = y[idx], pred[idx]
        ss_res = (ys - ps).pow(2).sum(1)
        ss_tot = (ys - ys.mean(1, keepdim=True)).pow(2).sum(1)
        return torch.where(ss_tot > 0, 1 - ss_res / ss_tot, torch.nan)

    low, high = bootstrap(r2, y.numel(), n_boot=n_boot, confidence=confidence, seed=seed)
    return float(low), float(high)


def normalise_by_gap(
    raw: Float[Tensor, "*shape"],
    clean: float | Float[Tensor, "*gap"],
    corrupted: float | Float[Tensor, "*gap"],
) -> Float[Tensor, "*shape"]:
    """`raw` (an effect measured from the corrupted run: patched - corrupted, or an
    attribution estimate of it) divided by the clean - corrupted gap; NaN where the
    gap is below 1e-12. 0 = the corrupted run, 1 = the clean run, in either direction."""
    gap = torch.as_tensor(clean, dtype=torch.float64) - torch.as_tensor(
        corrupted, dtype=torch.float64
    )
    gap = torch.where(gap.abs() < _TINY_GAP, torch.nan, gap)
    return (raw.double() / gap).to(raw.dtype if raw.dtype.is_floating_point else torch.float64)


@shape_checked
def normalised_effect(
    patched: Float[Tensor, "sites batch"],
    clean: Float[Tensor, " batch"],
    corrupted: Float[Tensor, " batch"],
) -> Float[Tensor, " sites"]:
    """(mean patched - mean corrupted) / (mean clean - mean corrupted) for every site.

    A ratio of means, not a mean of per-example ratios (those explode where an
    example's clean and corrupted values nearly agree)."""
    k = corrupted.mean()
    return normalise_by_gap(patched.mean(dim=1) - k, clean.mean(), k)


@shape_checked
def bootstrap_normalised(
    patched: Float[Tensor, "sites batch"],
    clean: Float[Tensor, " batch"],
    corrupted: Float[Tensor, " batch"],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[Float[Tensor, " sites"], Float[Tensor, " sites"]]:
    """Percentile bootstrap interval (low, high) of every site's `normalised_effect`,
    the whole ratio recomputed on each resample of examples."""
    p = patched.detach().double().cpu()
    c, k = clean.detach().double().cpu(), corrupted.detach().double().cpu()
    n = int(p.shape[1])
    if n == 0:
        nan = torch.full((p.shape[0],), float("nan"), dtype=patched.dtype)
        return nan, nan.clone()

    def ratio(idx: Tensor) -> Tensor:
        # A resample as a count vector: the means of every site are one matrix product.
        weights = resample_counts(idx) / n
        k_mean = weights @ k  # [boot]
        return normalise_by_gap(p @ weights.t() - k_mean, weights @ c, k_mean)  # [sites, boot]

    low, high = bootstrap(ratio, n, n_boot=n_boot, confidence=confidence, seed=seed)
    return low.to(patched.dtype), high.to(patched.dtype)


@shape_checked
def pearson(a: Float[Tensor, " n"], b: Float[Tensor, " n"]) -> float:
    """Pearson r (NaN when either side is constant)."""
    x, y = a.double() - a.double().mean(), b.double() - b.double().mean()
    denom = float(x.norm() * y.norm())
    return float((x * y).sum()) / denom if denom > 0 else float("nan")


def _ranks(a: Tensor) -> Tensor:
    """Ranks with ties given their average rank (as scipy's rankdata does)."""
    _, inverse, counts = torch.unique(a, return_inverse=True, return_counts=True)
    # A value's tied block spans ranks [before, before + count); its average rank:
    before = torch.cumsum(counts, 0) - counts
    average = before.double() + (counts.double() - 1) / 2
    return average[inverse]


@shape_checked
def spearman(a: Float[Tensor, " n"], b: Float[Tensor, " n"]) -> float:
    """Spearman rho: Pearson r of the (tie-averaged) ranks."""
    return pearson(_ranks(a.double()), _ranks(b.double()))


def holm_adjust(p_values: Sequence[float] | Float[Tensor, " m"]) -> Float[Tensor, " m"]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    The i-th smallest p (from 0) is multiplied by m - i, then made monotone by a
    running maximum and capped at 1; a hypothesis is rejected at level alpha where
    its adjusted p <= alpha. Controls the family-wise error rate under any dependence.
    """
    p = torch.as_tensor(p_values, dtype=torch.float64).flatten()
    if bool(((p < 0) | (p > 1) | p.isnan()).any()):
        raise MesaInterpError("p_values: expected probabilities in [0, 1], got a value outside")
    m = p.numel()
    order = torch.argsort(p, stable=True)
    factors = torch.arange(m, 0, -1, dtype=torch.float64)
    stepped = torch.cummax(p[order] * factors, dim=0).values.clamp(max=1.0)
    adjusted = torch.empty_like(p)
    adjusted[order] = stepped
    return adjusted
