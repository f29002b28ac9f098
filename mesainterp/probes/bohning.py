"""Böhning's bound on the logistic Hessian, inverted once per fit for every site.

The bound is c·X̃ᵀX̃ + diag(λ) with X̃ = [X, 1] (c = ½ for softmax, ¼ for
sigmoid). The batched L-BFGS uses its inverse as the initial inverse Hessian:
the whole p×p inverse where there are more rows than columns, only the diagonal
of the centred bound where there are fewer (wide features: forming and applying the
p×p inverse would cost more than the fit it speeds up).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["BohningPreconditioner", "DiagonalBohning", "inverse_cholesky_factor"]


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


class DiagonalBohning:
    """The diagonal of Böhning's bound in centred coordinates, inverted exactly.

    With w unchanged and b′ = b + μᵀw, X̃θ = (X − μ)w + b′: the bound becomes
    blockdiag(c·XcᵀXc + λ, c·n), whose diagonal D is inverted here, and the
    change of variables is applied on either side (P = A⁻¹D⁻¹A⁻ᵀ). So features with
    large means cost no more iterations than centred ones, for O(p) a site.
    mean: column means [sites, d]; sq: Σ(x − μ)² per column [sites, d]; n: rows.
    """

    def __init__(
        self, mean: Tensor, sq: Tensor, n: int, reg: Tensor, c: float, dtype: torch.dtype
    ) -> None:
        self.mean = mean.to(dtype)[:, :, None]
        diag = c * sq.to(dtype) + reg[:-1].to(dtype)
        self.inv_w = (1.0 / diag.clamp_min(torch.finfo(dtype).tiny))[:, :, None]
        self.inv_b = 1.0 / (c * n + float(reg[-1]))

    def select(self, keep: Tensor) -> DiagonalBohning:
        """The same preconditioner for the sites `keep` (indices into this batch)."""
        other = object.__new__(DiagonalBohning)
        other.mean, other.inv_w, other.inv_b = self.mean[keep], self.inv_w[keep], self.inv_b
        return other

    def __matmul__(self, q: Tensor) -> Tensor:
        q_w, q_b = q[:, :-1], q[:, -1:]
        r_w = (q_w - self.mean * q_b) * self.inv_w  # D⁻¹A⁻ᵀq, weight rows
        r_b = q_b * self.inv_b - (self.mean * r_w).sum(1, keepdim=True)
        return torch.cat([r_w, r_b], dim=1)
