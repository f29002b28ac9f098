"""Böhning's bound on the logistic Hessian, inverted once per fit for every site.

The bound is c·X̃ᵀX̃ + diag(λ) with X̃ = [X, 1] (c = ½ for softmax, ¼ for
sigmoid). The batched L-BFGS uses its inverse as the initial inverse Hessian.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["BohningPreconditioner", "augmented_gram", "inverse_cholesky_factor"]


def augmented_gram(
    x: Float[Tensor, "sites n d"], *, dtype: torch.dtype = torch.float64
) -> Float[Tensor, "sites p p"]:
    """[X, 1]ᵀ[X, 1] per site in `dtype`, with the n·d² product in x's own precision.

    Only the lower trapezoid is multiplied out (XᵀX_a, then X_bᵀX_b for the last
    half of the columns) and mirrored: three quarters of the flops of XᵀX."""
    s, n, d = x.shape
    h = d // 2
    g = torch.empty(s, d + 1, d + 1, dtype=dtype)
    g[:, :d, :h] = (x.transpose(1, 2) @ x[:, :, :h]).to(dtype)
    g[:, h:d, h:d] = (x[:, :, h:].transpose(1, 2) @ x[:, :, h:]).to(dtype)
    g[:, :h, h:d] = g[:, h:d, :h].transpose(1, 2)
    col = x.sum(1).to(dtype)
    g[:, :d, d] = col
    g[:, d, :d] = col
    g[:, d, d] = n
    return g


def inverse_cholesky_factor(
    a: Float[Tensor, "sites p p"], *, leaf: int = 16
) -> tuple[Float[Tensor, "sites p p"], Tensor]:
    """L⁻¹ where a = LLᵀ, per site, and a flag for sites whose factorisation failed.

    By halves: with a₂₁ = L₂₁L₁₁ᵀ and S = a₂₂ − L₂₁L₂₁ᵀ = L₂₂L₂₂ᵀ, the inverse
    factor is [[L₁₁⁻¹, 0], [−L₂₂⁻¹L₂₁L₁₁⁻¹, L₂₂⁻¹]]. Everything but the leaves is a
    batched matmul, which runs near peak where LAPACK's batched Cholesky loops over
    sites (about 3x slower at p = 129, and the inverse would cost as much again).
    """
    p = a.shape[-1]
    if p <= leaf:
        lower, info = torch.linalg.cholesky_ex(a)
        eye = torch.eye(p, dtype=a.dtype).expand_as(a)
        return torch.linalg.solve_triangular(lower, eye, upper=False), info != 0
    h = p // 2
    inv11, bad11 = inverse_cholesky_factor(a[:, :h, :h], leaf=leaf)
    l21 = a[:, h:, :h] @ inv11.transpose(1, 2)
    inv22, bad22 = inverse_cholesky_factor(
        torch.baddbmm(a[:, h:, h:], l21, l21.transpose(1, 2), alpha=-1), leaf=leaf
    )
    out = torch.zeros_like(a)
    out[:, :h, :h] = inv11
    out[:, h:, h:] = inv22
    out[:, h:, :h] = -(inv22 @ (l21 @ inv11))
    return out, bad11 | bad22


class BohningPreconditioner:
    """(c·gram + diag(reg))⁻¹ per site, formed explicitly as L⁻ᵀL⁻¹: one batched
    matmul per use reads it once, where two triangular solves read the factor twice
    at LAPACK's per-call cost. Built in the working precision (a preconditioner
    needs no more), in float64 where that factorisation fails."""

    def __init__(self, gram: Tensor, reg: Tensor, c: float, dtype: torch.dtype) -> None:
        m = gram.to(dtype, copy=True).mul_(c)
        diag = m.diagonal(dim1=1, dim2=2)
        diag.add_(reg.to(dtype)).add_(1e-6 * diag.mean(-1, keepdim=True))
        inv, bad = inverse_cholesky_factor(m)
        if bool(bad.any()):
            m64 = c * gram.to(torch.float64) + torch.diag(reg.to(torch.float64))
            m64.diagonal(dim1=1, dim2=2).add_(
                1e-10 * m64.diagonal(dim1=1, dim2=2).mean(-1, keepdim=True)
            )
            inv64, bad = inverse_cholesky_factor(m64)
            if bool(bad.any()):
                raise torch.linalg.LinAlgError(
                    "the logistic preconditioner is not positive definite"
                )
            inv = inv64.to(dtype)
        self.matrix = inv.transpose(1, 2) @ inv

    def select(self, keep: Tensor) -> BohningPreconditioner:
        """The same preconditioner for the sites `keep` (indices into this batch)."""
        other = object.__new__(BohningPreconditioner)
        other.matrix = self.matrix[keep]
        return other

    def __matmul__(self, q: Tensor) -> Tensor:
        # qᵀM is MKL's fast form for a few right-hand sides (about 4x Mq); M is symmetric.
        return (q.transpose(1, 2) @ self.matrix).transpose(1, 2)
