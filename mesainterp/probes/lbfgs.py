"""Batched, preconditioned L-BFGS for the L2 logistic objectives of every site at once.

Parameters are θ [sites, d+1, out] (the last row is the unpenalised intercept).
Features are kept as they came, [sites, n, d]: the intercept is added inside the
matmuls instead of appending a ones column, which would copy all the features.

Each site is an independent problem; the batch only shares the matmuls. The
preconditioner is Böhning's fixed bound on the Hessian, c·X̃ᵀX̃ + diag(λ) with
X̃ = [X, 1] (c = ½ for softmax, ¼ for sigmoid), inverted once per fit. Sites leave
the working set as they converge, so a few slow sites do not keep all of them busy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["LbfgsResult", "augmented_gram", "fit_lbfgs"]

Link = Literal["softmax", "sigmoid"]


@dataclass(frozen=True, kw_only=True)
class LbfgsResult:
    theta: Float[Tensor, "sites p out"]
    n_iter: int
    converged: bool


def augmented_gram(x: Float[Tensor, "sites n d"]) -> Float[Tensor, "sites p p"]:
    """[X, 1]ᵀ[X, 1] per site in float64, with the n·d² product in x's own precision."""
    s, n, d = x.shape
    g = torch.empty(s, d + 1, d + 1, dtype=torch.float64)
    g[:, :d, :d] = (x.transpose(1, 2) @ x).to(torch.float64)
    col = x.sum(1).to(torch.float64)
    g[:, :d, d] = col
    g[:, d, :d] = col
    g[:, d, d] = n
    return g


def _preconditioner(gram: Tensor, reg: Tensor, c: float, dtype: torch.dtype) -> Tensor:
    """(c·gram + diag(reg))⁻¹ per site; an explicit inverse, since a batched matmul
    per iteration is far cheaper than a batched triangular solve."""
    p = gram.shape[-1]
    m = c * gram + torch.diag(reg.to(torch.float64))
    jitter = 1e-10 * m.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
    chol = torch.linalg.cholesky(m + jitter * torch.eye(p, dtype=torch.float64))
    return torch.cholesky_inverse(chol).to(dtype)


class _Objective:
    """Loss and gradient of every site in the working set; `restrict` drops sites."""

    def __init__(self, x: Tensor, y: Tensor, reg: Tensor, link: Link) -> None:
        self.x = x
        self.y = y  # [1, n, out] (shared labels) or [sites, n, out]
        self.reg = reg[:, None]  # [p, 1]
        self.link = link

    def restrict(self, keep: Tensor) -> None:
        self.x = self.x[keep]
        if self.y.shape[0] > 1:
            self.y = self.y[keep]

    def __call__(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        z = torch.baddbmm(theta[:, -1:, :], self.x, theta[:, :-1, :])
        if self.link == "softmax":
            lse = torch.logsumexp(z, dim=-1, keepdim=True)
            nll = lse.sum((1, 2), dtype=torch.float64) - (z * self.y).sum(
                (1, 2), dtype=torch.float64
            )
            resid = torch.exp(z - lse) - self.y
        else:
            # softplus(z) − y·z, the binary log-loss of each label.
            nll = (torch.nn.functional.softplus(z) - self.y * z).sum((1, 2), dtype=torch.float64)
            resid = torch.sigmoid(z) - self.y
        penalty = 0.5 * (self.reg * theta.pow(2)).sum((1, 2), dtype=torch.float64)
        # (Rᵀ X)ᵀ rather than Xᵀ R: the same product, about 3x faster in MKL's batched GEMM.
        xt_r = (resid.transpose(1, 2) @ self.x).transpose(1, 2)
        grad = torch.cat([xt_r, resid.sum(1, keepdim=True)], dim=1) + self.reg * theta
        return nll + penalty, grad


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
    progress: Callable[[int], None] | None = None,
) -> LbfgsResult:
    """Minimise Σ log-loss + 1/(2C)·‖W‖² for every site, in x's dtype.

    y: targets [n, out] or [sites, n, out] (one-hot for softmax, 0/1 for sigmoid).
    tol bounds the max-abs gradient of the mean loss (sklearn's lbfgs `tol`); a
    site also stops once a step no longer lowers its loss at working precision.
    init: warm start θ [sites, d+1, out]; gram: [X, 1]ᵀ[X, 1] if already known.
    """
    dtype = x.dtype
    s, n, d = x.shape
    out = y.shape[-1]
    p = d + 1
    reg = torch.full((p,), 1.0 / C, dtype=dtype)
    reg[-1] = 0.0
    y = (y if y.ndim == 3 else y[None]).to(dtype)
    c = 0.5 if link == "softmax" else 0.25
    precond = _preconditioner(augmented_gram(x) if gram is None else gram, reg, c, dtype)
    objective = _Objective(x, y, reg, link)
    theta_all = torch.zeros(s, p, out, dtype=dtype) if init is None else init.to(dtype).clone()
    work = torch.arange(s)
    theta = theta_all.clone()
    loss, grad = objective(theta)
    s_hist: list[Tensor] = []
    y_hist: list[Tensor] = []
    tiny = torch.finfo(dtype).tiny
    eps = torch.finfo(dtype).eps
    active = grad.abs().amax((1, 2)) > tol * n
    it = 0
    while active.any() and it < max_iter:
        it += 1
        if progress is not None:
            progress(int(active.sum()))
        # Two-loop recursion with the bound's inverse as the initial inverse Hessian.
        q = grad.clone()
        alphas = []
        for s_i, y_i in zip(reversed(s_hist), reversed(y_hist), strict=True):
            rho = 1.0 / (s_i * y_i).sum((1, 2), keepdim=True).clamp_min(tiny)
            a = rho * (s_i * q).sum((1, 2), keepdim=True)
            q = q - a * y_i
            alphas.append((rho, a))
        r = precond @ q
        for s_i, y_i, (rho, a) in zip(s_hist, y_hist, reversed(alphas), strict=True):
            b = rho * (y_i * r).sum((1, 2), keepdim=True)
            r = r + s_i * (a - b)
        direction = -r
        slope = (grad * direction).sum((1, 2), dtype=torch.float64)
        bad = slope >= 0
        if bad.any():  # not downhill: fall back to the preconditioned gradient
            pg = precond @ grad
            direction = torch.where(bad[:, None, None], -pg, direction)
            slope = torch.where(bad, -(grad * pg).sum((1, 2), dtype=torch.float64), slope)
        step = active.to(torch.float64)
        new_theta = theta + step.to(dtype)[:, None, None] * direction
        new_loss, new_grad = objective(new_theta)
        for _ in range(20):  # Armijo backtracking, per site
            fail = active & (new_loss > loss + 1e-4 * step * slope)
            if not fail.any():
                break
            step = torch.where(fail, step * 0.5, step)
            new_theta = theta + step.to(dtype)[:, None, None] * direction
            new_loss, new_grad = objective(new_theta)
        stalled = active & (new_loss >= loss - 4 * eps * loss.abs())
        ok = active & ~stalled
        s_hist.append(torch.where(ok[:, None, None], new_theta - theta, 0.0))
        y_hist.append(torch.where(ok[:, None, None], new_grad - grad, 0.0))
        theta = torch.where(ok[:, None, None], new_theta, theta)
        loss = torch.where(ok, new_loss, loss)
        grad = torch.where(ok[:, None, None], new_grad, grad)
        if len(s_hist) > memory:
            s_hist.pop(0)
            y_hist.pop(0)
        active = ok & (grad.abs().amax((1, 2)) > tol * n)
        if active.any() and int(active.sum()) <= 0.75 * active.numel():
            # Drop finished sites from the batch (a copy, so only when it pays).
            theta_all[work] = theta
            work, theta, loss, grad = work[active], theta[active], loss[active], grad[active]
            objective.restrict(active)
            precond = precond[active]
            s_hist = [h[active] for h in s_hist]
            y_hist = [h[active] for h in y_hist]
            active = active[active]
    theta_all[work] = theta
    return LbfgsResult(theta=theta_all, n_iter=it, converged=not bool(active.any()))
