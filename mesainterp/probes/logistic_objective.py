"""The L2 logistic objective of a batch of sites: scores, loss, gradient.

Parameters are θ [sites, d+1, out] (the last row is the unpenalised intercept).
Features are kept as they came, [sites, n, d], and never copied: the intercept is
added inside the matmuls, and sites that need no work are skipped by running the
matmuls on views of the contiguous runs of sites that do. The batch may be a
subset of x's sites (`select`), so each run also names its first site in x.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["FoldView", "Link", "LogisticObjective", "raw_coefficients"]

Link = Literal["softmax", "sigmoid"]

# (start, stop) in the batch and the x site that `start` reads.
Run = tuple[int, int, int]


def raw_coefficients(
    theta: Float[Tensor, "sites p out"], mean: Tensor, scale: Tensor
) -> tuple[Float[Tensor, "sites d out"], Float[Tensor, "sites out"]]:
    """Weights and intercept on x's own columns: (x − μ)/σ·w + b = x·(w/σ) + b − μ·(w/σ)."""
    w = theta[:, :-1, :] / scale[:, :, None].to(theta.dtype)
    b = theta[:, -1, :] - (mean[:, None, :].to(theta.dtype) @ w).squeeze(1)
    return w, b


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
        return raw_coefficients(theta, self.mean, self.scale)

    def training_blocks(self, n: int) -> list[tuple[int, int]]:
        lo, hi = self.held_out
        return [(a, b) for a, b in ((0, lo), (hi, n)) if b > a]


class LogisticObjective:
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
        self.sites = list(range(x.shape[0]))
        self.standardise = None
        blocks = [(0, x.shape[1])]
        if view is not None:
            self.standardise = (view.mean.to(x.dtype), view.scale.to(x.dtype))
            blocks = view.training_blocks(x.shape[1])
        # Each block of x's rows with its columns in the scores.
        self.blocks, col = [], 0
        for a, b in blocks:
            self.blocks.append(((a, b), (col, col + b - a)))
            col += b - a
        self.n = col

    def select(self, keep: Tensor) -> LogisticObjective:
        """The objective of the sites `keep` (indices into this batch)."""
        other = copy.copy(self)
        other.sites = [self.sites[i] for i in keep.tolist()]
        if self.yt.shape[0] > 1:
            other.yt = self.yt[keep]
        if self.standardise is not None:
            other.standardise = (self.standardise[0][keep], self.standardise[1][keep])
        return other

    def runs(self, active: Tensor, gap: int = 2) -> list[Run]:
        """Runs covering the active sites, contiguous in the batch and in x; runs
        closer than `gap` merge, since one larger matmul beats two small ones."""
        runs: list[Run] = []
        for i in torch.nonzero(active).squeeze(1).tolist():
            if runs:
                a, b, first = runs[-1]
                if i - b < gap and self.sites[i] - first == i - a:
                    runs[-1] = (a, i + 1, first)
                    continue
            runs.append((i, i + 1, self.sites[i]))
        return runs

    def everything(self) -> list[Run]:
        return self.runs(torch.ones(len(self.sites), dtype=torch.bool), gap=len(self.sites))

    def scores(self, theta: Tensor, runs: list[Run], out: Tensor) -> Tensor:
        """out[run] = θ_wᵀXᵀ + b for each run; other sites are left as they were."""
        if self.standardise is None:
            w, intercept = theta[:, :-1, :], theta[:, -1, :]
        else:
            w, intercept = raw_coefficients(theta, *self.standardise)
        w_t = w.transpose(1, 2).contiguous()
        bias = intercept[:, :, None]
        for a, b, first in runs:
            for (r0, r1), (c0, c1) in self.blocks:
                x_t = self.x[first : first + b - a, r0:r1].transpose(1, 2)
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

    def gradient(self, theta: Tensor, z: Tensor, runs: list[Run], out: Tensor) -> Tensor:
        """out[run] = X̃ᵀ(p − y) + λθ for each run."""
        if self.link == "softmax":
            resid = torch.softmax(z, dim=1) - self.yt
        else:
            resid = torch.sigmoid(z) - self.yt
        d = self.x.shape[-1]
        out[:, d] = resid.sum(-1)
        for a, b, first in runs:
            x = self.x[first : first + b - a]
            parts = [resid[a:b, :, c0:c1] @ x[:, r0:r1] for (r0, r1), (c0, c1) in self.blocks]
            g = parts[0]
            for part in parts[1:]:
                g = g + part
            g = g.transpose(1, 2)
            if self.standardise is not None:  # X̃ᵀr = (Xᵀr − μ·Σr) / σ
                mean, scale = self.standardise
                g = (g - mean[a:b, :, None] * out[a:b, d][:, None, :]) / scale[a:b, :, None]
            out[a:b, :d] = g
        return out.add_(self.reg * theta)
