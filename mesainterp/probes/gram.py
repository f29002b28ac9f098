"""XᵀX per site, multiplying out only its lower trapezoid.

XᵀX_a for the first half of the columns, then X_bᵀX_b for the second half, and
the mirror image for the rest: three quarters of the flops of XᵀX in two large
matmuls (finer blocks lose more to small matmuls than they save).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["augmented_gram", "column_moments", "gram_matrix"]


def _fill_gram(x: Tensor, g: Tensor) -> None:
    """g[:, :d, :d] ← XᵀX, in x's precision, converted to g's dtype."""
    d = x.shape[-1]
    h = d // 2
    g[:, :d, :h] = x.mT @ x[:, :, :h]
    g[:, h:d, h:d] = x[:, :, h:].mT @ x[:, :, h:]
    g[:, :h, h:d] = g[:, h:d, :h].mT


def gram_matrix(
    x: Float[Tensor, "sites n d"], *, dtype: torch.dtype | None = None
) -> Float[Tensor, "sites d d"]:
    """XᵀX per site in `dtype` (default x's), the n·d² product in x's own precision."""
    s, _, d = x.shape
    g = torch.empty(s, d, d, dtype=dtype or x.dtype)
    _fill_gram(x, g)
    return g


def augmented_gram(
    x: Float[Tensor, "sites n d"], *, dtype: torch.dtype = torch.float64
) -> Float[Tensor, "sites p p"]:
    """[X, 1]ᵀ[X, 1] per site in `dtype`, the n·d² product in x's own precision."""
    s, n, d = x.shape
    g = torch.empty(s, d + 1, d + 1, dtype=dtype)
    _fill_gram(x, g)
    col = x.sum(1).to(dtype)
    g[:, :d, d] = col
    g[:, d, :d] = col
    g[:, d, d] = n
    return g


def column_moments(
    x: Float[Tensor, "sites n d"], *, dtype: torch.dtype = torch.float64
) -> tuple[Float[Tensor, "sites d"], Float[Tensor, "sites d"]]:
    """Σx and Σx² per column (the Gram's diagonal) in `dtype`, summed in x's precision.

    As 1ᵀX products: a strided reduction over the rows of [sites, n, d] (sum,
    var_mean) runs several times slower than the same sum as a matrix product.
    """
    ones = torch.ones(1, x.shape[1], dtype=x.dtype)
    sums = (ones @ x).squeeze(1).to(dtype)
    squares = (ones @ x.square()).squeeze(1).to(dtype)
    return sums, squares
