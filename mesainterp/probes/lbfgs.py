"""Batched, preconditioned L-BFGS for the L2 logistic objectives of every site at once.

Parameters are θ [sites, d+1, out] (the last row is the unpenalised intercept).
Features are kept as they came, [sites, n, d], and never copied: the intercept is
added inside the matmuls, and sites that have converged are skipped by running the
matmuls on views of the contiguous runs of sites still working.

Each site is an independent problem; the batch only shares the matmuls. Reading
the features dominates the cost, so an iteration reads them exactly twice: once for
the scores along the search direction, once for the gradient. The line search runs
on the scores, z(t) = z + t·Xδ, so trial steps never touch the features.

The preconditioner is Böhning's fixed bound on the Hessian, c·X̃ᵀX̃ + diag(λ) with
X̃ = [X, 1] (c = ½ for softmax, ¼ for sigmoid), factorised once per fit and rescaled
every iteration by the usual L-BFGS factor sᵀy / yᵀPy: well-separated classes have
curvature far below the bound, and unscaled steps would be many times too short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["FoldView", "LbfgsResult", "augmented_gram", "fit_lbfgs", "inverse_cholesky_factor"]

Link = Literal["softmax", "sigmoid"]


@dataclass(frozen=True, kw_only=True)
class LbfgsResult:
    theta: Float[Tensor, "sites p out"]
    n_iter: int
    converged: bool


@dataclass(frozen=True, kw_only=True)
class FoldView:
    """The training rows of one cross-validation fold, standardised, without copying x.

    The fit sees (x − mean) / scale over every row outside `held_out`. The affine
    map is applied to the parameters (d numbers a site) rather than to the data
    (n·d), and the held-out rows are skipped by running the matmuls on the row
    blocks either side of them.
    """

    mean: Float[Tensor, "sites d"]
    scale: Float[Tensor, "sites d"]
    held_out: tuple[int, int]

    def raw_coefficients(
        self, theta: Float[Tensor, "sites p out"]
    ) -> tuple[Float[Tensor, "sites d out"], Float[Tensor, "sites out"]]:
        """Weights and intercept on x's own columns: (x − μ)/σ·w + b = x·(w/σ) + b − μ·(w/σ)."""
        w = theta[:, :-1, :] / self.scale[:, :, None].to(theta.dtype)
        b = theta[:, -1, :] - (self.mean[:, None, :].to(theta.dtype) @ w).squeeze(1)
        return w, b

    def training_blocks(self, n: int) -> list[tuple[int, int]]:
        lo, hi = self.held_out
        return [(a, b) for a, b in ((0, lo), (hi, n)) if b > a]


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


class _Preconditioner:
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

    def __matmul__(self, q: Tensor) -> Tensor:
        return self.matrix @ q


def _runs(active: Tensor, gap: int = 2) -> list[tuple[int, int]]:
    """[start, stop) runs covering the active sites; runs closer than `gap` merge,
    since one larger matmul beats two small ones."""
    idx = torch.nonzero(active).squeeze(1).tolist()
    runs: list[tuple[int, int]] = []
    for i in idx:
        if runs and i - runs[-1][1] < gap:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


class _Objective:
    """Scores, loss and gradient, with scores laid out [sites, out, n]: δᵀXᵀ and RᵀX
    are the fast forms of MKL's batched matrix-vector products (about 2x and 3x).
    With a `FoldView`, x's rows are read in the blocks around the held-out fold."""

    def __init__(
        self, x: Tensor, y: Tensor, reg: Tensor, link: Link, view: FoldView | None
    ) -> None:
        self.x = x
        self.yt = y.transpose(1, 2)  # [1 or sites, out, n]
        self.reg = reg[:, None]  # [p, 1]
        self.link = link
        self.view = view
        blocks = [(0, x.shape[1])] if view is None else view.training_blocks(x.shape[1])
        # Each block of x's rows with its columns in the scores.
        self.blocks, col = [], 0
        for a, b in blocks:
            self.blocks.append(((a, b), (col, col + b - a)))
            col += b - a
        self.n = col
        if view is not None:
            self.mean = view.mean.to(x.dtype)
            self.scale = view.scale.to(x.dtype)

    def scores(self, theta: Tensor, runs: list[tuple[int, int]], out: Tensor) -> Tensor:
        """out[run] = θ_wᵀXᵀ + b for each run; other sites are left as they were."""
        if self.view is None:
            w, intercept = theta[:, :-1, :], theta[:, -1, :]
        else:
            w, intercept = self.view.raw_coefficients(theta)
        w_t = w.transpose(1, 2).contiguous()
        bias = intercept[:, :, None]
        for a, b in runs:
            for (r0, r1), (c0, c1) in self.blocks:
                x_t = self.x[a:b, r0:r1].transpose(1, 2)
                if len(self.blocks) == 1:
                    torch.baddbmm(bias[a:b], w_t[a:b], x_t, out=out[a:b])
                else:  # a strided `out=` is slower than a copy
                    out[a:b, :, c0:c1] = torch.baddbmm(bias[a:b], w_t[a:b], x_t)
        return out

    def data_loss(self, z: Tensor) -> Tensor:
        """Σ log-loss per site, summed in float64."""
        yt = self.yt
        if self.link == "softmax":
            lse = torch.logsumexp(z, dim=1)
            return lse.sum(1, dtype=torch.float64) - (z * yt).sum((1, 2), dtype=torch.float64)
        # softplus(z) − y·z, the binary log-loss of each label.
        return (torch.nn.functional.softplus(z) - yt * z).sum((1, 2), dtype=torch.float64)

    def slope_curvature(
        self, z: Tensor, z_dir: Tensor, theta: Tensor, direction: Tensor
    ) -> tuple[Tensor, Tensor]:
        """First and second derivative of the loss along `direction`, per site."""
        if self.link == "softmax":
            prob = torch.softmax(z, dim=1)
            mean_dir = (prob * z_dir).sum(1, keepdim=True)
            curv = (prob * z_dir * (z_dir - mean_dir)).sum((1, 2))
        else:
            prob = torch.sigmoid(z)
            curv = (prob * (1 - prob) * z_dir.square()).sum((1, 2))
        slope = ((prob - self.yt) * z_dir).sum((1, 2)) + (self.reg * theta * direction).sum((1, 2))
        return slope, curv + (self.reg * direction.square()).sum((1, 2))

    def penalty(self, theta: Tensor) -> Tensor:
        return 0.5 * (self.reg * theta.pow(2)).sum((1, 2), dtype=torch.float64)

    def gradient(
        self, theta: Tensor, z: Tensor, runs: list[tuple[int, int]], out: Tensor
    ) -> Tensor:
        """out[run] = X̃ᵀ(p − y) + λθ for each run."""
        if self.link == "softmax":
            resid = torch.softmax(z, dim=1) - self.yt
        else:
            resid = torch.sigmoid(z) - self.yt
        d = self.x.shape[-1]
        out[:, d] = resid.sum(-1)
        for a, b in runs:
            parts = [
                resid[a:b, :, c0:c1] @ self.x[a:b, r0:r1] for (r0, r1), (c0, c1) in self.blocks
            ]
            g = parts[0]
            for part in parts[1:]:
                g = g + part
            g = g.transpose(1, 2)
            if self.view is not None:  # X̃ᵀr = (Xᵀr − μ·Σr) / σ
                g = (g - self.mean[a:b, :, None] * out[a:b, d][:, None, :]) / self.scale[
                    a:b, :, None
                ]
            out[a:b, :d] = g
        return out.add_(self.reg * theta)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum((1, 2), keepdim=True)


def fit_lbfgs(
    x: Float[Tensor, "sites n d"],
    y: Tensor,
    *,
    link: Link,
    C: float,
    tol: float,
    max_iter: int,
    memory: int = 10,
    init: Tensor | None = None,
    gram: Tensor | None = None,
    view: FoldView | None = None,
    progress: Callable[[int], None] | None = None,
) -> LbfgsResult:
    """Minimise Σ log-loss + 1/(2C)·‖W‖² for every site, in x's dtype.

    y: targets [n, out] or [sites, n, out] (one-hot for softmax, 0/1 for sigmoid).
    tol bounds the max-abs gradient of the mean loss (sklearn's lbfgs `tol`); a
    site also stops once a step no longer lowers its loss at working precision.
    init: warm start θ [sites, d+1, out]; gram: [X, 1]ᵀ[X, 1] if already known.
    view: fit a fold's standardised training rows instead of x itself (y then has
    only those rows, and `gram` must be theirs).
    """
    dtype = x.dtype
    s, _, d = x.shape
    out = y.shape[-1]
    p = d + 1
    reg = torch.full((p,), 1.0 / C, dtype=dtype)
    reg[-1] = 0.0
    y = (y if y.ndim == 3 else y[None]).to(dtype)
    c = 0.5 if link == "softmax" else 0.25
    if gram is None:
        if view is not None:
            raise ValueError("fit_lbfgs: a FoldView needs the Gram of its standardised rows")
        gram = augmented_gram(x, dtype=dtype)
    objective = _Objective(x, y, reg, link, view)
    n = objective.n
    if y.shape[1] != n:
        raise ValueError(f"fit_lbfgs: y has {y.shape[1]} rows, the fit sees {n}")
    precond = _Preconditioner(gram, reg, c, dtype)
    theta = torch.zeros(s, p, out, dtype=dtype) if init is None else init.to(dtype).clone()
    everything = [(0, s)]
    z = torch.zeros(s, out, n, dtype=dtype)
    if init is not None:
        objective.scores(theta, everything, z)
    grad = objective.gradient(theta, z, everything, torch.empty_like(theta))
    loss = objective.data_loss(z) + objective.penalty(theta)
    s_hist: list[Tensor] = []
    y_hist: list[Tensor] = []
    tiny = torch.finfo(dtype).tiny
    eps = torch.finfo(dtype).eps
    active = grad.abs().amax((1, 2)) > tol * n
    z_dir = torch.zeros_like(z)
    it = 0
    while active.any() and it < max_iter:
        it += 1
        if progress is not None:
            progress(int(active.sum()))
        # Two-loop recursion, the scaled bound's inverse as the initial inverse Hessian.
        q = grad.clone()
        alphas = []
        for s_i, y_i in zip(reversed(s_hist), reversed(y_hist), strict=True):
            rho = 1.0 / _dot(s_i, y_i).clamp_min(tiny)
            a = rho * _dot(s_i, q)
            q = q - a * y_i
            alphas.append((rho, a))
        if s_hist:  # one matmul for both right-hand sides reads the matrix once
            r, p_y = (precond @ torch.cat([q, y_hist[-1]], dim=2)).split(out, dim=2)
            sy, ypy = _dot(s_hist[-1], y_hist[-1]), _dot(y_hist[-1], p_y)
            r = r * torch.where((sy > 0) & (ypy > 0), sy / ypy.clamp_min(tiny), 1.0)
        else:
            r = precond @ q
        for s_i, y_i, (rho, a) in zip(s_hist, y_hist, reversed(alphas), strict=True):
            b = rho * _dot(y_i, r)
            r = r + s_i * (a - b)
        direction = torch.where(active[:, None, None], -r, 0.0)
        slope = (grad * direction).sum((1, 2), dtype=torch.float64)
        bad = active & (slope >= 0)
        if bad.any():  # not downhill: fall back to the preconditioned gradient
            pg = precond @ grad
            direction = torch.where(bad[:, None, None], -pg, direction)
            slope = torch.where(bad, -(grad * pg).sum((1, 2), dtype=torch.float64), slope)
        runs = _runs(active)
        objective.scores(direction, runs, z_dir)
        # One Newton step on the step length from 1, then Armijo backtracking per
        # site; both on the scores alone. A well-chosen length saves iterations.
        unit_z, unit_theta = z + z_dir, theta + direction
        d1, d2 = objective.slope_curvature(unit_z, z_dir, unit_theta, direction)
        step = torch.where(active, (1 - d1 / d2.clamp_min(tiny)).clamp(1e-2, 4.0), 0.0)
        for _ in range(40):
            new_theta = theta + step[:, None, None] * direction
            new_z = z + step[:, None, None] * z_dir
            new_loss = objective.data_loss(new_z) + objective.penalty(new_theta)
            fail = active & (new_loss > loss + 1e-4 * step.to(torch.float64) * slope)
            if not fail.any():
                break
            step = torch.where(fail, step * 0.5, step)
        stalled = active & (new_loss >= loss - 4 * eps * loss.abs())
        ok = active & ~stalled
        okb = ok[:, None, None]
        new_grad = objective.gradient(new_theta, new_z, _runs(ok), grad.clone())
        s_hist.append(torch.where(okb, new_theta - theta, 0.0))
        y_hist.append(torch.where(okb, new_grad - grad, 0.0))
        theta = torch.where(okb, new_theta, theta)
        z = torch.where(ok[:, None, None], new_z, z)
        loss = torch.where(ok, new_loss, loss)
        grad = torch.where(okb, new_grad, grad)
        if len(s_hist) > memory:
            s_hist.pop(0)
            y_hist.pop(0)
        active = ok & (grad.abs().amax((1, 2)) > tol * n)
    return LbfgsResult(theta=theta, n_iter=it, converged=not bool(active.any()))
