"""Batched, preconditioned L-BFGS for the L2 logistic objectives of every site at once.

Each site is an independent problem; the batch only shares the matmuls. Reading
the features dominates the cost, so an iteration reads them exactly twice: once for
the scores along the search direction, once for the gradient. The line search runs
on the scores, z(t) = z + t·Xδ, so trial steps never touch the features. Sites
that have converged drop out of the matmuls at once, and out of the batch's
element-wise work once enough of them have.

The initial inverse Hessian is the inverse of Böhning's bound (`bohning`; its
diagonal only for wide features, fewer rows than columns), rescaled every iteration by the usual L-BFGS factor sᵀy / yᵀPy: well-separated
classes have curvature far below the bound, and unscaled steps would be many times
too short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.probes.bohning import BohningPreconditioner, DiagonalBohning
from mesainterp.probes.gram import augmented_gram, column_moments
from mesainterp.probes.logistic_objective import FoldView, Link, LogisticObjective

__all__ = ["LbfgsResult", "fit_lbfgs", "working_bytes"]

# The batch sheds its converged sites once they are this share of it: the gather
# costs about one iteration's element-wise work.
_COMPACT_AT = 1 / 3


@dataclass(frozen=True, kw_only=True)
class LbfgsResult:
    theta: Float[Tensor, "sites p out"]
    n_iter: int
    converged: bool


def working_bytes(n: int, d: int, out: int, itemsize: int, memory: int = 10) -> int:
    """About the memory `fit_lbfgs` holds per site beyond x: the p×p Gram, factor
    and preconditioner (where n ≥ p), the history and a dozen score-sized arrays."""
    p = d + 1
    square = 3 * p * p if n >= p else 0
    return itemsize * (square + (2 * memory + 8) * p * out + 12 * n * out)


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
    diagonal: tuple[Tensor, Tensor] | None = None,
) -> LbfgsResult:
    """Minimise Σ log-loss + 1/(2C)·‖W‖² for every site, in x's dtype.

    y: targets [n, out] or [sites, n, out] (one-hot for softmax, 0/1 for sigmoid).
    tol bounds the max-abs gradient of the mean loss (sklearn's lbfgs `tol`); a
    site also stops once a step no longer lowers its loss at working precision.
    init: warm start θ [sites, d+1, out]; gram: [X, 1]ᵀ[X, 1] if already known.
    view: fit a fold's standardised training rows instead of x itself (y then has
    only those rows, and `gram` must be theirs).
    The preconditioner is the full inverse bound (from `gram`), or its centred
    diagonal when `diagonal` gives the fitted columns' (mean, Σ(x − mean)²) [sites,
    d] each, or when x has fewer rows than columns and no `gram` is given: there
    the diagonal costs O(n·d) against the full bound's O(n·d² + d³) and the
    fit's own O(n·d) an iteration.
    """
    dtype = x.dtype
    s, _, d = x.shape
    out = y.shape[-1]
    p = d + 1
    reg = torch.full((p,), 1.0 / C, dtype=dtype)
    reg[-1] = 0.0
    y = (y if y.ndim == 3 else y[None]).to(dtype)
    c = 0.5 if link == "softmax" else 0.25
    objective = LogisticObjective(x, y, reg, link, view)
    n = objective.n
    if y.shape[1] != n:
        raise ValueError(f"fit_lbfgs: y has {y.shape[1]} rows, the fit sees {n}")
    precond: BohningPreconditioner | DiagonalBohning
    if diagonal is None and gram is None and view is None and n < p:
        sums, squares = column_moments(x, dtype=dtype)
        mean = sums / n  # Σ(x − μ)² = Σx² − nμ², clamped: a preconditioner needs no more
        diagonal = (mean, (squares - n * mean.square()).clamp_min(0))
    if diagonal is not None:
        precond = DiagonalBohning(diagonal[0], diagonal[1], n, reg, c, dtype)
    else:
        if gram is None:
            if view is not None:
                raise ValueError("fit_lbfgs: a FoldView needs the Gram of its standardised rows")
            gram = augmented_gram(x, dtype=dtype)
        precond = BohningPreconditioner(gram, reg, c, dtype)
    theta = torch.zeros(s, p, out, dtype=dtype) if init is None else init.to(dtype).clone()
    final = torch.empty_like(theta)  # each site's θ lands here as it leaves the batch
    z = torch.zeros(s, out, n, dtype=dtype)
    if init is not None:
        objective.scores(theta, objective.everything(), z)
    grad = objective.gradient(theta, z, objective.everything(), torch.empty_like(theta))
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
        objective.scores(direction, objective.runs(active), z_dir)
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
        new_grad = objective.gradient(new_theta, new_z, objective.runs(ok), grad.clone())
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
        n_active = int(active.sum())
        if 0 < n_active <= (1 - _COMPACT_AT) * len(active):
            keep = torch.nonzero(active).squeeze(1)
            final[objective.sites] = theta
            theta, z, z_dir, grad, loss = (t[keep] for t in (theta, z, z_dir, grad, loss))
            s_hist, y_hist = [t[keep] for t in s_hist], [t[keep] for t in y_hist]
            precond, objective = precond.select(keep), objective.select(keep)
            active = active[keep]
    final[objective.sites] = theta
    return LbfgsResult(theta=final, n_iter=it, converged=not bool(active.any()))
