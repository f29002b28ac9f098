"""Test 6, algorithmic match (von Oswald et al. 2023), where a ground truth exists.

For icl-regression the model's query predictions on fresh examples are compared
with the reference learners run on the same context:

- GD-k: k = 1..8 steps of gradient descent from w = 0, each k at its best rate;
- ridge regression over a grid of λ (`RIDGE_LAMBDAS`);
- GD++: one GD step on inputs preconditioned by (I - γ Σ̂), Σ̂ = XᵀX / N the
  context covariance (von Oswald et al.'s curvature-corrected step), γ on a grid;
- least squares (minimum norm).

Free parameters (rate, λ, γ) are fitted on the first half of the examples and
every comparison is made on the second half. Two measures per reference, as
von Oswald et al. compare: the prediction match, R² of the model's predictions
by the reference's (1 - mean squared prediction difference / variance), and the
sensitivity cosine, cos(∂ŷ_model/∂x_q, ∂ŷ_ref/∂x_q) per example (for these
references ∂ŷ/∂x_q is the reference's effective weight vector). Both carry a
percentile bootstrap interval over examples.

The best fit is the reference with the highest R²; a reference "cannot be told
apart" from it when the bootstrap interval of their paired R² difference
includes 0. Pass: the best reference's R² clears `algorithm_threshold` on its
corrected lower bound (p times the number of references, Bonferroni). Control:
the random-init twin's best R².
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, not_applicable
from mesainterp.evidence.stats import ALPHA, CORRECTION, bootstrap_weights, one_sided_p

__all__ = ["GDPP_GAMMAS", "GD_STEPS", "RIDGE_LAMBDAS", "algorithmic_match", "reference_weights"]

NAME = "algorithmic_match"
GD_STEPS = tuple(range(1, 9))
RIDGE_LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
GDPP_GAMMAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def _gd_weights(x: Tensor, y: Tensor, lr: float, steps: int) -> Tensor:
    n = x.shape[1]
    w = torch.zeros(x.shape[0], x.shape[2], dtype=torch.float64)
    for _ in range(steps):
        resid = torch.einsum("bnd,bd->bn", x, w) - y
        w = w - lr / n * torch.einsum("bn,bnd->bd", resid, x)
    return w


def _fit_scale(w_unit: Tensor, xq: Tensor, goal: Tensor) -> float:
    """The scalar s minimising |s <w_unit, x_q> - goal|² (closed form)."""
    s = torch.einsum("bd,bd->b", w_unit, xq)
    return float((s * goal).sum() / (s * s).sum().clamp_min(1e-30))


def reference_weights(
    xs: Tensor, ys: Tensor, pred: Tensor, fit: Tensor
) -> dict[str, tuple[Tensor, str]]:
    """Each reference's effective weights [n, d] (ŷ = <w, x_q>) and its fitted setting.

    Free parameters are chosen on the rows `fit` to match `pred` best.
    """
    x, y, xq = xs[:, :-1].double(), ys[:, :-1].double(), xs[:, -1].double()
    n, d = x.shape[1], x.shape[2]
    goal = pred.double()
    out: dict[str, tuple[Tensor, str]] = {}

    def err(w: Tensor) -> float:
        return float(((torch.einsum("bd,bd->b", w[fit], xq[fit]) - goal[fit]) ** 2).sum())

    one = _fit_scale(_gd_weights(x[fit], y[fit], 1.0, 1), xq[fit], goal[fit])
    for k in GD_STEPS:
        grid = [one * f for f in torch.linspace(0.05, 2.0, 40).tolist()] if k > 1 else [one]
        best = min(grid, key=lambda lr: err(_gd_weights(x, y, lr, k)))
        out[f"gd-{k}"] = (_gd_weights(x, y, best, k), f"lr={best:.4g}")
    gram = torch.einsum("bnd,bne->bde", x, x)
    xty = torch.einsum("bnd,bn->bd", x, y)
    eye = torch.eye(d, dtype=torch.float64)
    ridge = {
        lam: torch.linalg.solve(gram + lam * eye, xty[..., None])[..., 0] for lam in RIDGE_LAMBDAS
    }
    lam = min(ridge, key=lambda k: err(ridge[k]))
    out["ridge"] = (ridge[lam], f"lambda={lam:g}")
    cov = gram / n
    gdpp: dict[float, Tensor] = {}
    for gamma in GDPP_GAMMAS:
        p = eye - gamma * cov  # [b, d, d], symmetric
        w_unit = torch.einsum("bde,be->bd", p, torch.einsum("bde,be->bd", p, xty / n))
        scale = _fit_scale(w_unit[fit], xq[fit], goal[fit])
        gdpp[gamma] = scale * w_unit
    gamma = min(gdpp, key=lambda g: err(gdpp[g]))
    out["gd++"] = (gdpp[gamma], f"gamma={gamma:g}")
    out["least squares"] = (torch.linalg.lstsq(x, y[..., None]).solution[..., 0], "min norm")
    return out


def _model_outputs(model: Any, inputs: Tensor, pos: int, d_x: int) -> tuple[Tensor, Tensor]:
    """(predictions [n], ∂ŷ/∂x_q [n, d_x]) of the model at the query."""
    x = inputs.clone().float().requires_grad_(True)
    out = model(x)[:, pos, 0]
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach().double(), grad[:, pos, :d_x].double()


def _r2_draws(pred: Tensor, ref: Tensor, weights: Tensor) -> Tensor:
    total = weights.sum(1)
    mean = weights @ pred / total
    ss_tot = weights @ (pred * pred) - total * mean * mean
    return 1 - (weights @ (pred - ref) ** 2) / ss_tot.clamp_min(1e-300)


def _compare(
    pred: Tensor, grad: Tensor, refs: dict[str, tuple[Tensor, str]], xq: Tensor,
    rows: Tensor, weights: Tensor,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    out = {}
    for name, (w, setting) in refs.items():
        ref = torch.einsum("bd,bd->b", w, xq)[rows]
        r2 = _r2_draws(pred[rows], ref, weights)
        cos = torch.nn.functional.cosine_similarity(grad[rows], w[rows], dim=1)
        cos_draws = (weights @ cos) / weights.sum(1)
        out[name] = {"setting": setting, "r2_draws": r2, "cos_draws": cos_draws}
    return out


def _interval(draws: Tensor) -> list[float]:
    q = torch.quantile(draws[1:], torch.tensor([0.025, 0.975], dtype=torch.float64))
    return [float(q[0]), float(q[1])]


def algorithmic_match(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 6 (see the module docstring)."""
    n_refs = len(GD_STEPS) + 3
    criterion = (
        "R² of the model's query predictions by the best of GD-1..8 (fitted rates), ridge"
        f" (λ grid), GD++ and least squares >= {cfg.algorithm_threshold:g} (corrected lower"
        f" bound, Bonferroni over {n_refs} references); sensitivity cosines beside it"
    )
    task = inputs.task
    if not hasattr(task, "gd_predictions"):
        return not_applicable(
            NAME, criterion, cfg.algorithm_threshold,
            f"task {task.name!r} has no reference algorithm to compare with",
        )  # fmt: skip
    batch = task.sample(cfg.n_examples, seed=cfg.seed + 30_000)
    d_x = int(task.d_x)  # type: ignore[attr-defined]
    xs, ys = batch.labels["xs"], batch.labels["ys"]
    xq = xs[:, -1].double()
    n = xs.shape[0]
    fit, test = torch.arange(n) < n // 2, torch.arange(n) >= n // 2
    rows = torch.nonzero(test).squeeze(1)
    weights = torch.cat(
        [torch.ones(1, rows.numel(), dtype=torch.float64),
         bootstrap_weights(rows.numel(), cfg.n_boot, cfg.seed)]
    )  # fmt: skip
    pos = inputs.query_pos
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for who, model in (("model", inputs.model), ("random-init", inputs.twin)):
        pred, grad = _model_outputs(model, batch.inputs, pos, d_x)
        refs = reference_weights(xs, ys, pred, fit)
        found[who] = _compare(pred, grad, refs, xq, rows, weights)
    table = found["model"]
    best = max(table, key=lambda k: float(table[k]["r2_draws"][0]))
    best_draws = table[best]["r2_draws"]
    tied = []
    for name, row in table.items():
        if name != best and _interval(best_draws - row["r2_draws"])[0] <= 0:
            tied.append(name)
    p = min(1.0, n_refs * float(one_sided_p(best_draws[1:], cfg.algorithm_threshold)))
    low = float(torch.quantile(best_draws[1:], torch.tensor(ALPHA / n_refs, dtype=torch.float64)))
    twin_best = max(float(r["r2_draws"][0]) for r in found["random-init"].values())
    value = float(best_draws[0])
    ok = p <= ALPHA
    apart = (
        "cannot be told apart from: " + ", ".join(tied) if tied else "told apart from all others"
    )
    return EvidenceResult(
        test=NAME,
        criterion=criterion,
        metric=f"R² of the model's predictions by {best} ({table[best]['setting']}); {apart}",
        value=value,
        ci_low=_interval(best_draws)[0],
        ci_high=_interval(best_draws)[1],
        control=twin_best,
        control_name="random-init twin's best R²",
        margin=value,
        threshold=cfg.algorithm_threshold,
        verdict="pass" if ok else "fail",
        reason=f"best fit {best}: R² = {value:.3f}, lower bound {low:.3f} vs threshold"
        f" {cfg.algorithm_threshold:g}: p = {p:.3g} {'<=' if ok else '>'} {ALPHA:g}; {apart}",
        margin_low=low,
        p_value=p,
        p_adjusted=p,
        details={
            "closest": best,
            "indistinguishable_from_best": tied,
            "references": {
                name: {
                    "setting": row["setting"],
                    "r2": float(row["r2_draws"][0]),
                    "r2_ci": _interval(row["r2_draws"]),
                    "sensitivity_cos": float(row["cos_draws"][0]),
                    "sensitivity_cos_ci": _interval(row["cos_draws"]),
                    "random_init_r2": float(found["random-init"][name]["r2_draws"][0]),
                }
                for name, row in table.items()
            },
            "n_fit": int(fit.sum()),
            "n_test": int(rows.numel()),
            "ci": "percentile bootstrap over the held-out half of the examples",
            "correction": CORRECTION,
        },
    )
