"""Böhning's bound on the logistic Hessian, inverted once per fit for every site.

The bound is c·X̃ᵀX̃ + diag(λ) with X̃ = [X, 1] (c = ½ for softmax, ¼ for
sigmoid). The batched L-BFGS uses its inverse as the initial inverse Hessian.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["BohningPreconditioner", "inverse_cholesky_factor"]


def inverse_cholesky_factor(
    a: Float[Tensor, "sites p p"], *, leaf: int = 16
) -> tuple[Float[Tensor, "sites p p"], Tensor]:
    """L⁻¹ where a = LLᵀ, per site, and a flag for sites whose factorisation failed.

    By halves: with a₂₁ = L₂₁L₁₁ᵀ and S = a₂₂ − L₂₁L₂₁ᵀ = L₂₂L₂₂ᵀ, the inverse
    factor is [[L₁₁⁻¹, 0], [−L₂₂⁻¹L₂₁L₁₁⁻¹, L₂₂⁻¹]]. Everything but the leaves is a
    batched matmul, which runs near peak where LAPACK's batched Cholesky loops over
    sites (about 3x slower at p = 129, and the inverse would cost as much again).
    """
    out = a.clone()
    return out, _invert_into_factor(out, leaf)


def _invert_into_factor(a: Tensor, leaf: int) -> Tensor:
    """Overwrite `a` with its inverse Cholesky factor, block by block; returns the
    failure flag. In place, since fresh pages cost as much as the arithmetic here."""
    p = a.shape[-1]
    if p <= leaf:
        lower, info = torch.linalg.cholesky_ex(a)
        eye = torch.eye(p, dtype=a.dtype).expand_as(a)
        a.copy_(torch.linalg.solve_triangular(lower, eye, upper=False))
        return info != 0
    h = p // 2
    a11, a21, a22 = a[:, :h, :h], a[:, h:, :h], a[:, h:, h:]
    bad = _invert_into_factor(a11, leaf)  # a₁₁ ← L₁₁⁻¹
    l21 = a21 @ a11.transpose(1, 2)
    a22.baddbmm_(l21, l21.transpose(1, 2), alpha=-1)  # a₂₂ ← S
    bad |= _invert_into_factor(a22, leaf)  # a₂₂ ← L₂₂⁻¹
    a21.copy_(a22 @ (l21 @ a11)).neg_()
    a[:, :h, h:].zero_()
    return bad


class BohningPreconditioner:
    """(c·gram + diag(reg))⁻¹ per site, formed explicitly as L⁻ᵀL⁻¹: one batched
    matmul per use reads it once, where two triangular solves read the factor twice
    at LAPACK's per-call cost. Built in the working precision (a preconditioner
    needs no more), in float64 where that factorisation fails."""

    def __init__(self, gram: Tensor, reg: Tensor, c: float, dtype: torch.dtype) -> None:
        inv = gram.to(dtype, copy=True).mul_(c)
        diag = inv.diagonal(dim1=1, dim2=2)
        diag.add_(reg.to(dtype)).add_(1e-6 * diag.mean(-1, keepdim=True))
        bad = _invert_into_factor(inv, leaf=16)
        if bool(bad.any()):
            m64 = c * gram.to(torch.float64) + torch.diag(reg.to(torch.float64))
            m64.diagonal(dim1=1, dim2=2).add_(
                1e-10 * m64.diagonal(dim1=1, dim2=2).mean(-1, keepdim=True)
            )
            if bool(_invert_into_factor(m64, leaf=16).any()):
                raise torch.linalg.LinAlgError(
                    "the logistic preconditioner is not positive definite"
                )
            inv = m64.to(dtype)
        self.matrix = inv.transpose(1, 2) @ inv

    def select(self, keep: Tensor) -> BohningPreconditioner:
        """The same preconditioner for the sites `keep` (indices into this batch)."""
        other = object.__new__(BohningPreconditioner)
        other.matrix = self.matrix[keep]
        return other

    def __matmul__(self, q: Tensor) -> Tensor:
        # qᵀM is MKL's fast form for a few right-hand sides (about 4x Mq); M is symmetric.
        return (q.transpose(1, 2) @ self.matrix).transpose(1, 2)
