"""Linear probes fitted for many sites at once.

Every function takes features stacked as [sites, n, d] and fits one independent
probe per site in a single batched torch computation (no Python loop over sites).

Objectives (chosen to match scikit-learn, the oracle in the tests):

- logistic, multinomial (K >= 3 classes): sum of log-loss + 1/(2C)·||W||², W is
  [d, K] (all K rows penalised, as sklearn does), intercept unpenalised.
- logistic, binary / multi-label: one logit per label, same objective per label,
  labels independent (sklearn's binary `LogisticRegression` per label).
- ridge: ||Y − XW − b||² + alpha·||W||², intercept unpenalised (closed form).

Binary and multi-label problems are solved by batched Newton (IRLS); the
multinomial problem by batched L-BFGS, since its Hessian ((d+1)K)² per site is
too large to form for every site.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import ConfigError

__all__ = [
    "LinearProbe",
    "Standardizer",
    "fit_logistic",
    "fit_multilabel",
    "fit_ridge",
    "standardize",
]


@dataclass(frozen=True, kw_only=True)
class Standardizer:
    """Per-site feature mean and scale (fitted on training rows only)."""

    mean: Float[Tensor, "sites 1 d"]
    scale: Float[Tensor, "sites 1 d"]

    def __call__(self, x: Float[Tensor, "sites n d"]) -> Float[Tensor, "sites n d"]:
        return (x.to(self.mean.dtype) - self.mean) / self.scale


def standardize(
    x: Float[Tensor, "sites n d"], *, dtype: torch.dtype = torch.float64
) -> Standardizer:
    """Fit a standardiser (zero-variance features keep scale 1, like sklearn)."""
    x = x.to(dtype)
    mean = x.mean(dim=1, keepdim=True)
    scale = x.std(dim=1, keepdim=True, unbiased=False)
    scale = torch.where(scale > 1e-12 * (1 + mean.abs()), scale, torch.ones_like(scale))
    return Standardizer(mean=mean, scale=scale)


@dataclass(frozen=True, kw_only=True)
class LinearProbe:
    """Weights of one probe per site, in the coordinates it was fitted in.

    kind:  "multinomial" (predict = argmax of logits), "binary" (one logit per label,
           predict = logit > 0; multi-label when labels > 1) or "ridge" (predict = value).
    coef:  [sites, d, out]; intercept: [sites, out].
    """

    kind: str
    coef: Float[Tensor, "sites d out"]
    intercept: Float[Tensor, "sites out"]
    n_iter: int = 0
    converged: bool = True

    def decision(self, x: Float[Tensor, "sites n d"]) -> Float[Tensor, "sites n out"]:
        return x.to(self.coef.dtype) @ self.coef + self.intercept[:, None, :]

    def predict(self, x: Float[Tensor, "sites n d"]) -> Tensor:
        """Class ids [sites, n] (multinomial), bool [sites, n, labels] (binary) or values."""
        z = self.decision(x)
        if self.kind == "multinomial":
            return z.argmax(dim=-1)
        if self.kind == "binary":
            return z > 0
        return z


def _check_c(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(name, f"expected a positive number, got {value!r}")
    return float(value)


def _with_bias(x: Tensor) -> Tensor:
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)


def fit_ridge(
    x: Float[Tensor, "sites n d"],
    y: Float[Tensor, "n out"] | Float[Tensor, " n"],
    *,
    alpha: float = 1.0,
) -> LinearProbe:
    """Closed-form ridge for every site: solve (XcᵀXc + alpha·I) W = XcᵀYc, batched.

    Features and targets are centred (intercept unpenalised, as in sklearn's Ridge).
    """
    alpha = _check_c("alpha", alpha)
    # The n·d² Gram pass runs in the features' own precision (float32 features:
    # float32, twice as fast); means and the d×d solve are always float64.
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(work)
    y2 = (y[:, None] if y.ndim == 1 else y).to(torch.float64)
    x_mean = x.sum(dim=1, keepdim=True, dtype=torch.float64) / x.shape[1]
    y_mean = y2.mean(dim=0, keepdim=True)
    xc = x - x_mean.to(work)
    yc = (y2 - y_mean).to(work)
    xct = xc.transpose(1, 2)
    d = x.shape[-1]
    gram = (xct @ xc).to(torch.float64) + alpha * torch.eye(d, dtype=torch.float64)
    rhs = (xct @ yc).to(torch.float64)
    coef = torch.linalg.solve(gram, rhs)
    intercept = y_mean - (x_mean @ coef).squeeze(1)
    return LinearProbe(kind="ridge", coef=coef, intercept=intercept)


def fit_multilabel(
    x: Float[Tensor, "sites n d"],
    y: Int[Tensor, "n labels"] | Int[Tensor, " n"],
    *,
    C: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> LinearProbe:
    """Independent L2 logistic regressions, one per label column, for every site.

    Batched Newton (IRLS) over [sites, labels]; each Newton system is (d+1)×(d+1).
    A label that is constant in `y` gets a large-magnitude intercept and zero
    weights (predicting the constant), as the limit of the objective.
    """
    C = _check_c("C", C)
    y2 = (y[:, None] if y.ndim == 1 else y).to(torch.float64)
    x = _with_bias(x.to(torch.float64))
    # Gradients in float64 fix the optimum; the Hessian only steers the Newton step,
    # so it is formed in float32 (the dominant cost, n·p² per site and label).
    x32 = x.to(torch.float32)
    xt32 = x32.transpose(1, 2).contiguous()
    s, _, p = x.shape
    n_labels = y2.shape[1]
    theta = torch.zeros(s, n_labels, p, dtype=torch.float64)
    reg = torch.full((p,), 1.0 / C, dtype=torch.float64)
    reg[-1] = 0.0
    # A tiny ridge on the intercept keeps the Hessian invertible for constant labels.
    reg_solve = reg.clone()
    reg_solve[-1] = 1e-10
    yt = y2.T[None]  # [1, labels, n]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        z = torch.einsum("snp,slp->sln", x, theta)
        prob = torch.sigmoid(z)
        grad = torch.einsum("sln,snp->slp", prob - yt, x) + theta * reg
        w = (prob * (1 - prob)).to(torch.float32)
        hess = torch.stack([xt32 @ (x32 * w[:, j, :, None]) for j in range(n_labels)], dim=1).to(
            torch.float64
        ) + torch.diag(reg_solve)
        step = torch.linalg.solve(hess, grad[..., None]).squeeze(-1)
        theta = theta - step
        if step.abs().max() < tol * (1 + theta.abs().max()):
            converged = True
            break
    coef = theta[..., :-1].transpose(1, 2)
    return LinearProbe(
        kind="binary", coef=coef, intercept=theta[..., -1], n_iter=it, converged=converged
    )


def _multinomial_loss_grad(
    theta: Tensor, x: Tensor, xt: Tensor, y_onehot: Tensor, reg: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-site objective [s] and gradient [s, p, K]; `xt` is x transposed, contiguous."""
    z = x @ theta  # [s, n, K]
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    penalty = 0.5 * (reg * theta.pow(2)).sum((1, 2))
    loss = (lse.squeeze(-1).sum(-1) - (z * y_onehot).sum((1, 2))).to(torch.float64) + penalty
    prob = torch.exp(z - lse)
    grad = xt @ (prob - y_onehot) + reg * theta
    return loss, grad


def _bound_hessian_cholesky(xt: Tensor, x: Tensor, reg: Tensor) -> Tensor:
    """Cholesky factor of ½·XᵀX + diag(λ) per site (Böhning's bound on each class
    block of the multinomial Hessian), factorised in float64."""
    gram = (xt.to(torch.float64) @ x.to(torch.float64)) * 0.5
    p = gram.shape[-1]
    jitter = 1e-8 * gram.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
    m = gram + torch.diag(reg[:, 0].to(torch.float64)) + jitter * torch.eye(p, dtype=torch.float64)
    return torch.linalg.cholesky(m)


def fit_logistic(
    x: Float[Tensor, "sites n d"],
    y: Int[Tensor, " n"],
    *,
    C: float = 1.0,
    n_classes: int | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
    memory: int = 10,
    dtype: torch.dtype = torch.float32,
) -> LinearProbe:
    """L2 logistic regression (sklearn's objective) for every site at once.

    Two classes: one logit (batched Newton). More: multinomial over all K classes
    (batched L-BFGS with a per-site backtracking line search). Class ids must be
    0..K-1; classes absent from `y` keep their logit pushed down by the data.
    `tol` bounds the max-abs gradient of the mean loss, as sklearn's lbfgs `tol` does.
    `dtype` is the multinomial solver's working precision (losses are compared in
    float64); float32 halves the cost and moves accuracy by far less than 0.01.
    """
    C = _check_c("C", C)
    if y.ndim != 1 or y.dtype.is_floating_point:
        raise ConfigError("y", f"expected integer class ids [n], got {tuple(y.shape)} {y.dtype}")
    k = int(n_classes if n_classes is not None else int(y.max()) + 1)
    if k <= 2:
        return fit_multilabel(x, (y == 1).long(), C=C)
    x = _with_bias(x.to(dtype))
    xt = x.transpose(1, 2).contiguous()
    s, n, p = x.shape
    y_onehot = torch.nn.functional.one_hot(y.long(), k).to(dtype)[None]
    reg = torch.full((p, 1), 1.0 / C, dtype=dtype)
    reg[-1] = 0.0
    # Explicit inverse: a batched matmul per use is far cheaper than a batched solve.
    precond = torch.cholesky_inverse(_bound_hessian_cholesky(xt, x, reg)).to(dtype)
    theta_all = torch.zeros(s, p, k, dtype=dtype)
    # Working set: sites still iterating; shrunk as sites converge.
    work = torch.arange(s)
    theta = theta_all.clone()
    loss, grad = _multinomial_loss_grad(theta, x, xt, y_onehot, reg)
    s_hist: list[Tensor] = []
    y_hist: list[Tensor] = []
    active = torch.ones(s, dtype=torch.bool)
    tiny = torch.finfo(dtype).tiny
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        # Two-loop recursion, batched over sites, with the Böhning bound
        # ½·XᵀX ⊗ I + λ as the initial inverse-Hessian (a preconditioner).
        q = grad.clone()
        alphas = []
        for s_i, y_i in zip(reversed(s_hist), reversed(y_hist), strict=True):
            rho = 1.0 / (s_i * y_i).sum((1, 2), keepdim=True).clamp_min(tiny)
            a = rho * (s_i * q).sum((1, 2), keepdim=True)
            q = q - a * y_i
            alphas.append((rho, a))
        r = precond @ q
        if s_hist:
            hy = precond @ y_hist[-1]
            gamma = (s_hist[-1] * y_hist[-1]).sum((1, 2), keepdim=True) / (
                (y_hist[-1] * hy).sum((1, 2), keepdim=True).clamp_min(tiny)
            )
            r = gamma * r
        for s_i, y_i, (rho, a) in zip(s_hist, y_hist, reversed(alphas), strict=True):
            b = rho * (y_i * r).sum((1, 2), keepdim=True)
            r = r + s_i * (a - b)
        direction = -r
        slope = (grad * direction).sum((1, 2))
        # Fall back to the preconditioned gradient where the direction is not downhill.
        bad = slope >= 0
        if bad.any():
            pg = precond @ grad
            direction = torch.where(bad[:, None, None], -pg, direction)
            slope = torch.where(bad, -(grad * pg).sum((1, 2)), slope)
        step = torch.where(active, 1.0, 0.0).to(dtype)
        new_theta = theta + step[:, None, None] * direction
        new_loss, new_grad = _multinomial_loss_grad(new_theta, x, xt, y_onehot, reg)
        for _ in range(30):
            fail = active & (new_loss > loss + 1e-4 * step.double() * slope.double())
            if not fail.any():
                break
            step = torch.where(fail, step * 0.5, step)
            new_theta = theta + step[:, None, None] * direction
            new_loss, new_grad = _multinomial_loss_grad(new_theta, x, xt, y_onehot, reg)
        s_hist.append(new_theta - theta)
        y_hist.append(new_grad - grad)
        theta = torch.where(active[:, None, None], new_theta, theta)
        loss = torch.where(active, new_loss, loss)
        grad = torch.where(active[:, None, None], new_grad, grad)
        if len(s_hist) > memory:
            s_hist.pop(0)
            y_hist.pop(0)
        active = grad.abs().amax((1, 2)) > tol * n
        if not active.any():
            converged = True
            break
        if int(active.sum()) <= 0.75 * active.numel():
            # Drop converged sites from the batch (a copy, so only when it pays).
            theta_all[work] = theta
            work, theta, loss, grad = work[active], theta[active], loss[active], grad[active]
            x, xt, precond = x[active], xt[active], precond[active]
            s_hist = [h[active] for h in s_hist]
            y_hist = [h[active] for h in y_hist]
            active = active[active]
    theta_all[work] = theta
    theta = theta_all
    return LinearProbe(
        kind="multinomial",
        coef=theta[:, :-1, :],
        intercept=theta[:, -1, :],
        n_iter=it,
        converged=converged,
    )
