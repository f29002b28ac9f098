"""Test 6, algorithmic match (von Oswald et al. 2023), where a ground truth exists.

For icl-regression the model's query predictions on fresh examples are compared
with two reference learners run on the same context: one step of gradient
descent from w = 0 (its learning rate fitted to the model's predictions, in
closed form) and least squares. The number is the R² of the model's
predictions explained by the closer algorithm (1 = the model computes it).
Control: the random-init twin's R² against its own closest algorithm. Pass:
R² >= `algorithm_threshold`. The models' and the algorithms' own errors on the
targets are reported beside it.
"""

from __future__ import annotations

import torch

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, judged, not_applicable
from mesainterp.evidence.stats import bootstrap_r2, r2_score

__all__ = ["algorithmic_match"]

NAME = "algorithmic_match"


@torch.no_grad()
def _predictions(model: object, inputs: torch.Tensor, pos: int) -> torch.Tensor:
    out = model(inputs)  # type: ignore[operator]
    return out[:, pos, 0].double().cpu()


def _matches(task: object, batch: object, pred: torch.Tensor) -> dict[str, float]:
    lr = float(task.best_gd_lr(batch, predictions=pred))  # type: ignore[attr-defined]
    gd = task.gd_predictions(batch, lr).double()  # type: ignore[attr-defined]
    ls = batch.labels["lstsq_pred"].double()  # type: ignore[attr-defined]
    return {"gd_lr": lr, "gd": r2_score(pred, gd), "lstsq": r2_score(pred, ls)}


def algorithmic_match(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 6 (see the module docstring)."""
    criterion = (
        "R² of the model's predictions explained by the closer of one GD step (fitted rate)"
        f" and least squares >= {cfg.algorithm_threshold:g}"
    )
    task = inputs.task
    if not hasattr(task, "gd_predictions"):
        return not_applicable(
            NAME, criterion, cfg.algorithm_threshold,
            f"task {task.name!r} has no reference algorithm to compare with",
        )  # fmt: skip
    batch = task.sample(cfg.n_examples, seed=cfg.seed + 30_000)
    pos = inputs.query_pos
    pred = _predictions(inputs.model, batch.inputs, pos)
    twin_pred = _predictions(inputs.twin, batch.inputs, pos)
    model_m, twin_m = _matches(task, batch, pred), _matches(task, batch, twin_pred)
    best = "gd" if model_m["gd"] >= model_m["lstsq"] else "lstsq"
    algo = (
        task.gd_predictions(batch, model_m["gd_lr"]).double()  # type: ignore[attr-defined]
        if best == "gd"
        else batch.labels["lstsq_pred"].double()
    )
    target = batch.targets[:, pos].double()
    lr_task = float(task.effective_gd_lr)  # type: ignore[attr-defined]
    mse = {
        "model": float(((pred - target) ** 2).mean()),
        "random_init_twin": float(((twin_pred - target) ** 2).mean()),
        "gd_step": float(((task.gd_predictions(batch, lr_task).double() - target) ** 2).mean()),  # type: ignore[attr-defined]
        "lstsq": float(((batch.labels["lstsq_pred"].double() - target) ** 2).mean()),
    }
    return judged(
        test=NAME,
        criterion=criterion,
        metric=f"R² of the model's predictions by {'one GD step' if best == 'gd' else 'least squares'}",
        value=model_m[best],
        ci=bootstrap_r2(pred, algo, n_boot=cfg.n_boot, seed=cfg.seed),
        control=max(twin_m["gd"], twin_m["lstsq"]),
        control_name="random-init twin's R²",
        threshold=cfg.algorithm_threshold,
        details={
            "closest": best,
            "r2_gd": model_m["gd"],
            "r2_lstsq": model_m["lstsq"],
            "gd_lr_fitted": model_m["gd_lr"],
            "gd_lr_task": lr_task,
            "random_init_r2_gd": twin_m["gd"],
            "random_init_r2_lstsq": twin_m["lstsq"],
            "mse_to_target": mse,
            "n": cfg.n_examples,
            "ci": "percentile bootstrap over examples",
        },
        compare_to_control=False,
    )
