"""Linear probes fitted for many sites at once.

Every function takes features stacked as [sites, n, d] and fits one independent
probe per site in a single batched torch computation (no Python loop over sites).

Objectives (chosen to match scikit-learn, the oracle in the tests):

- logistic, multinomial (K >= 3 classes): sum of log-loss + 1/(2C)·||W||², W is
  [d, K] (all K rows penalised, as sklearn does), intercept unpenalised.
- logistic, binary / multi-label: one logit per label, same objective per label,
  labels independent (sklearn's binary `LogisticRegression` per label).
- ridge: ||Y − XW − b||² + alpha·||W||², intercept unpenalised (closed form).

Both logistic objectives are solved by batched, preconditioned L-BFGS
(`mesainterp.probes.lbfgs`); ridge by one Gram matrix per site shared by all
targets and a batched Cholesky solve (the n×n dual system when n < d).
Sites are fitted in chunks (`chunk_sites`, by default as many as fit in
`chunks.MEMORY_BUDGET_BYTES` of working memory); the probes do not depend on it.
Labels may have any trailing shape for ridge and multi-label probes: [n, *] is
read as [n, outputs], each entry one output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.probes.chunks import site_chunks
from mesainterp.probes.gram import gram_matrix
from mesainterp.probes.lbfgs import LbfgsResult, fit_lbfgs, working_bytes
from mesainterp.shapes import shape_checked

__all__ = [
    "LinearProbe",
    "Standardizer",
    "fit_logistic",
    "fit_multilabel",
    "fit_ridge",
    "label_matrix",
    "ridge_solve",
    "standardize",
]


@dataclass(frozen=True, kw_only=True)
class Standardizer:
    """Per-site feature mean and scale (fitted on training rows only)."""

    mean: Float[Tensor, "sites 1 d"]
    scale: Float[Tensor, "sites 1 d"]

    @shape_checked
    def __call__(self, x: Float[Tensor, "sites n d"]) -> Float[Tensor, "sites n d"]:
        return (x.to(self.mean.dtype) - self.mean) / self.scale


@shape_checked
def standardize(
    x: Float[Tensor, "sites n d"], *, dtype: torch.dtype = torch.float64
) -> Standardizer:
    """Fit a standardiser (zero-variance features keep scale 1, like sklearn).

    The statistics are one fused pass in the features' precision, stored in `dtype`.
    """
    work = x.dtype if x.is_floating_point() else dtype
    var, mean = torch.var_mean(x.to(work), dim=1, correction=0, keepdim=True)
    mean, scale = mean.to(dtype), var.to(dtype).sqrt()
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

    @shape_checked
    def decision(self, x: Float[Tensor, "sites n d"]) -> Float[Tensor, "sites n out"]:
        # Computed in the features' precision: casting them up would copy them all.
        # (Wᵀ Xᵀ)ᵀ is MKL's fast form for a few outputs (about 1.7x X W).
        dtype = x.dtype if x.is_floating_point() else self.coef.dtype
        bias = self.intercept.to(dtype)[:, :, None]
        return torch.baddbmm(bias, self.coef.to(dtype).mT, x.to(dtype).mT).mT

    @shape_checked
    def predict(self, x: Float[Tensor, "sites n d"]) -> Shaped[Tensor, "sites n ..."]:
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


def label_matrix(y: Tensor, n: int) -> Tensor:
    """Labels [n] or [n, *] as [n, outputs]; a one-line refusal naming the shape
    when they do not have one row per example."""
    if y.ndim == 0 or y.shape[0] != n or y.numel() == 0:
        raise ConfigError(
            "y",
            f"has shape {tuple(y.shape)}, expected [n={n}] or [n={n}, ...] (one row per example)",
        )
    return y.reshape(n, -1)


def _check_binary(y: Tensor) -> None:
    if not bool(((y == 0) | (y == 1)).all()):
        raise ConfigError("y", f"multi-label targets of shape {tuple(y.shape)} must be 0/1 or bool")


def _work_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def ridge_solve(
    gram: Float[Tensor, "sites d d"], rhs: Float[Tensor, "sites d out"], alpha: float
) -> Float[Tensor, "sites d out"]:
    """Solve (gram + alpha·I) W = rhs for every site by Cholesky, in float64.

    One factorisation per site serves every target column.
    """
    return _ridge_solve_owned(gram.to(torch.float64, copy=True), rhs, alpha)


def _ridge_solve_owned(
    m: Float[Tensor, "sites d d"], rhs: Float[Tensor, "sites d out"], alpha: float
) -> Float[Tensor, "sites d out"]:
    """`ridge_solve` on a float64 Gram the caller gives up: alpha is added to its
    diagonal in place (each full pass over the sites' d×d matrices counts here)."""
    m.diagonal(dim1=1, dim2=2).add_(alpha)
    chol, info = torch.linalg.cholesky_ex(m)
    if bool((info != 0).any()):  # not positive definite at working precision
        return torch.linalg.solve(m, rhs.to(torch.float64))
    return torch.cholesky_solve(rhs.to(torch.float64), chol)


@shape_checked
def fit_ridge(
    x: Float[Tensor, "sites n d"],
    y: Float[Tensor, " n *out"],
    *,
    alpha: float = 1.0,
    chunk_sites: int | None = None,
) -> LinearProbe:
    """Closed-form ridge for every site (intercept unpenalised, as sklearn's Ridge).

    n ≥ d: (XcᵀXc + alpha·I) W = XcᵀYc, with XcᵀXc = XᵀX − n·μμᵀ, so the features
    are never copied to centre them. n < d: the dual, W = Xcᵀ(XcXcᵀ + alpha·I)⁻¹Yc.
    The n·d² products run in the features' precision (float32 features: float32);
    means and the solves are float64. y: [n] or [n, *] (flattened to [n, outputs]).
    `chunk_sites`: sites per batch (None: by the memory budget); same result.
    """
    alpha = _check_c("alpha", alpha)
    n, d = x.shape[1], x.shape[2]
    y2 = label_matrix(y, n).to(torch.float64)
    per_site = 8 * (2 * min(n, d) ** 2 + n * d + n * y2.shape[1])
    parts = [_ridge_sites(x[c], y2, alpha) for c in site_chunks(x.shape[0], per_site, chunk_sites)]
    if len(parts) == 1:
        return parts[0]
    return LinearProbe(
        kind="ridge",
        coef=torch.cat([q.coef for q in parts]),
        intercept=torch.cat([q.intercept for q in parts]),
    )


def _ridge_sites(x: Tensor, y2: Tensor, alpha: float) -> LinearProbe:
    """`fit_ridge` for one batch of sites; y2 is [n, out] float64."""
    work = _work_dtype(x)
    x = x.to(work)
    n, d = x.shape[1], x.shape[2]
    y_mean = y2.mean(dim=0, keepdim=True)
    yc = (y2 - y_mean).to(work)
    # One thin pass gives both Xᵀ·Yc and the column sums (a ones column on Y's side).
    # (Y1ᵀ X)ᵀ rather than Xᵀ Y1: the same product, about 3x faster in MKL's batched GEMM.
    y1 = torch.cat([yc, torch.ones_like(yc[:, :1])], dim=1)
    xty1 = (y1.T @ x).transpose(1, 2).to(torch.float64)
    x_mean = xty1[..., -1:].transpose(1, 2) / n  # [s, 1, d]
    if n < d:
        xc = x - x_mean.to(work)
        kernel = (xc @ xc.transpose(1, 2)).to(torch.float64)
        dual = _ridge_solve_owned(kernel, yc.to(torch.float64).expand(x.shape[0], -1, -1), alpha)
        coef = (xc.transpose(1, 2) @ dual.to(work)).to(torch.float64)
    else:
        # A fresh float64 Gram, centred in place: XᵀX − n·μμᵀ.
        gram = gram_matrix(x, dtype=torch.float64)
        gram.baddbmm_(x_mean.transpose(1, 2), x_mean, alpha=-n)
        var = gram.diagonal(dim1=1, dim2=2) / n
        if work == torch.float32 and bool((x_mean[:, 0].pow(2) > 16 * var).any()):
            # Means far above the spread: subtracting n·μμᵀ in float64 from a float32
            # XᵀX would cancel most digits, so centre the copy instead.
            xc = x - x_mean.to(work)
            gram = gram_matrix(xc, dtype=torch.float64)
        # Xcᵀ·Yc = Xᵀ·Yc, since Yc sums to zero over rows.
        coef = _ridge_solve_owned(gram, xty1[..., :-1], alpha)
    intercept = y_mean - (x_mean @ coef).squeeze(1)
    return LinearProbe(kind="ridge", coef=coef, intercept=intercept)


def _probe(kind: str, fit: LbfgsResult) -> LinearProbe:
    return LinearProbe(
        kind=kind,
        coef=fit.theta[:, :-1, :],
        intercept=fit.theta[:, -1, :],
        n_iter=fit.n_iter,
        converged=fit.converged,
    )


def _init_theta(init: LinearProbe | None) -> Tensor | None:
    if init is None:
        return None
    return torch.cat([init.coef, init.intercept[:, None, :]], dim=1)


def _fit_chunked(
    x: Tensor,
    targets: Tensor,
    *,
    init: Tensor | None,
    chunk_sites: int | None,
    memory: int = 10,
    **options: object,
) -> LbfgsResult:
    """`fit_lbfgs` over the sites a chunk at a time; each site's fit is its own."""
    n, d = x.shape[1], x.shape[2]
    per_site = working_bytes(n, d, targets.shape[-1], x.element_size(), memory)
    fits = [
        fit_lbfgs(
            x[c],
            targets,
            init=None if init is None else init[c],
            memory=memory,
            **options,  # type: ignore[arg-type]
        )
        for c in site_chunks(x.shape[0], per_site, chunk_sites)
    ]
    if len(fits) == 1:
        return fits[0]
    return LbfgsResult(
        theta=torch.cat([f.theta for f in fits]),
        n_iter=max(f.n_iter for f in fits),
        converged=all(f.converged for f in fits),
    )


@shape_checked
def fit_multilabel(
    x: Float[Tensor, "sites n d"],
    y: Shaped[Tensor, " n *labels"],
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    tol: float = 1e-8,
    dtype: torch.dtype | None = None,
    init: LinearProbe | None = None,
    chunk_sites: int | None = None,
) -> LinearProbe:
    """Independent L2 logistic regressions, one per label column, for every site.

    `tol` bounds the max-abs gradient of the mean loss; `dtype` is the working
    precision (default: float64 for float64 features, else float32), where a site
    also stops once its loss no longer falls. A label constant in `y` drives its
    intercept large and its weights to zero (the limit of the objective).
    `init` warm-starts from another probe of the same shape. y: 0/1 or bool, [n]
    or [n, *] (e.g. an adjacency matrix per example: each entry one label).
    `chunk_sites`: sites per batch (None: by the memory budget); same probes.
    """
    C = _check_c("C", C)
    y2 = label_matrix(y, x.shape[1])
    _check_binary(y2)
    work = dtype if dtype is not None else _work_dtype(x)
    fit = _fit_chunked(
        x.to(work),
        y2.to(work),
        link="sigmoid",
        C=C,
        tol=tol,
        max_iter=max_iter,
        init=_init_theta(init),
        chunk_sites=chunk_sites,
    )
    return _probe("binary", fit)


@shape_checked
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
    init: LinearProbe | None = None,
    chunk_sites: int | None = None,
) -> LinearProbe:
    """L2 logistic regression (sklearn's objective) for every site at once.

    Two classes: one logit. More: multinomial over all K classes. Class ids must
    be 0..K-1; classes absent from `y` keep their logit pushed down by the data.
    `tol` bounds the max-abs gradient of the mean loss, as sklearn's lbfgs `tol`
    does. `dtype` is the working precision (losses are summed in float64);
    float32 halves the cost and moves accuracy by far less than 0.01. `init`
    warm-starts from a probe of the same shape (e.g. the previous CV fold's).
    `chunk_sites`: sites per batch (None: by the memory budget); same probes.
    """
    C = _check_c("C", C)
    if y.ndim != 1 or y.dtype.is_floating_point or y.shape[0] != x.shape[1]:
        raise ConfigError(
            "y",
            f"expected integer class ids [n={x.shape[1]}], got {tuple(y.shape)} {y.dtype}"
            " (a label per example with more dimensions is a multi-label or ridge target)",
        )
    k = int(n_classes if n_classes is not None else int(y.max()) + 1)
    binary = k <= 2
    targets = (y == 1)[:, None] if binary else torch.nn.functional.one_hot(y.long(), k)
    fit = _fit_chunked(
        x.to(dtype),
        targets.to(dtype),
        link="sigmoid" if binary else "softmax",
        C=C,
        tol=tol,
        max_iter=max_iter,
        memory=memory,
        init=_init_theta(init),
        chunk_sites=chunk_sites,
    )
    return _probe("binary" if binary else "multinomial", fit)
