"""The corrected margin of a probe reading over its best control (see `stats`).

A reading is the per-example outcomes of one probe target at the declared
position(s): the model at every layer, each random-init twin at every layer,
shuffled labels, the constant predictor and every search-free baseline. Scores
are recomputed on the same bootstrap resamples for all of them; per draw, each
control gives its best layer and the best control is the maximum over all of
them, so the model is compared with the strongest alternative in every draw.

`skill=True` reports (score - control) / (1 - control), the share of the gap the
control leaves that the model closes (for AUCs, where controls sit high);
otherwise the plain difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.evidence.stats import ALPHA, bootstrap_weights, one_sided_p, weighted_scores

__all__ = ["Judgement", "Outcomes", "Reading", "judge"]

Metric = Literal["accuracy", "auc", "r2"]


@dataclass(frozen=True, kw_only=True)
class Outcomes:
    """Per-example outcomes [rows, n] (rows: layers) of one predictor; `y` for R²."""

    metric: Metric
    values: Float[Tensor, "rows n"]
    y: Tensor | None = None

    def scores(self, weights: Tensor) -> Tensor:
        return weighted_scores(self.values, weights, metric=self.metric, y=self.y)

    def point(self) -> Tensor:
        return self.scores(torch.ones(1, self.values.shape[1], dtype=torch.float64))[:, 0]


@dataclass(frozen=True, kw_only=True)
class Reading:
    """One declared position: the model and every control, on the same examples.

    controls: name -> outcomes; names starting "random-init" are the twin seeds
    and names starting "baseline: " the search-free baselines.
    """

    pos: int
    model: Outcomes
    controls: dict[str, Outcomes]


@dataclass(frozen=True, kw_only=True)
class Judgement:
    """The corrected margin of the best (position, layer) cell over the best control."""

    pos: int
    layer: int
    value: float
    value_ci: tuple[float, float]
    control: float
    control_name: str
    margin: float
    margin_low: float
    p_value: float
    cells: int
    controls: dict[str, float] = field(default_factory=dict)

    @property
    def random_init(self) -> list[float]:
        return [v for k, v in self.controls.items() if k.startswith("random-init")]

    @property
    def best_baseline(self) -> tuple[str, float] | None:
        base = {k: v for k, v in self.controls.items() if k.startswith("baseline: ")}
        if not base:
            return None
        name = max(base, key=lambda k: base[k])
        return name.removeprefix("baseline: "), base[name]

    def details(self) -> dict[str, Any]:
        best = self.best_baseline
        return {
            "verdict_pos": self.pos,
            "verdict_layer": self.layer,
            "cells_searched": self.cells,
            "margin_lower_bound": self.margin_low,
            "p_value": self.p_value,
            "controls": self.controls,
            "random_init_distribution": self.random_init,
            "best_baseline": None if best is None else {"name": best[0], "value": best[1]},
        }


def _margin(score: Tensor, control: Tensor, skill: bool) -> Tensor:
    if not skill:
        return score - control
    return (score - control) / (1 - control).clamp_min(1e-9)


def judge(
    readings: list[Reading],
    *,
    threshold: float,
    skill: bool,
    n_boot: int,
    seed: int,
    alpha: float = ALPHA,
) -> Judgement:
    """Pick the cell with the smallest bootstrap p and pay for the choice (Bonferroni)."""
    n = readings[0].model.values.shape[1]
    weights = torch.cat([torch.ones(1, n, dtype=torch.float64), bootstrap_weights(n, n_boot, seed)])
    best: dict[str, Any] | None = None
    cells = sum(r.model.values.shape[0] for r in readings)
    for reading in readings:
        model = reading.model.scores(weights)  # [layers, 1 + boot]
        per_control = {k: c.scores(weights).max(0).values for k, c in reading.controls.items()}
        control = torch.stack(list(per_control.values())).max(0).values  # [1 + boot]
        margins = _margin(model, control[None], skill)
        p = one_sided_p(margins[:, 1:], threshold)
        layer = int(torch.argmin(p - 1e-9 * margins[:, 0]))  # ties: the larger margin
        if best is None or float(p[layer]) < best["p"]:
            point = {k: float(v[0]) for k, v in per_control.items()}
            name = max(point, key=lambda k: point[k])
            draws = margins[layer, 1:]
            q = torch.quantile(draws, torch.tensor([min(0.5, alpha / cells)], dtype=draws.dtype))
            vq = torch.quantile(model[layer, 1:], torch.tensor([0.025, 0.975], dtype=torch.float64))
            best = {
                "p": float(p[layer]),
                "judgement": Judgement(
                    pos=reading.pos,
                    layer=layer,
                    value=float(model[layer, 0]),
                    value_ci=(float(vq[0]), float(vq[1])),
                    control=float(control[0]),
                    control_name=name,
                    margin=float(margins[layer, 0]),
                    margin_low=float(q[0]),
                    p_value=min(1.0, float(p[layer]) * cells),
                    cells=cells,
                    controls=point,
                ),
            }
    assert best is not None
    j: Judgement = best["judgement"]
    if not math.isfinite(j.margin):
        return Judgement(**{**j.__dict__, "p_value": 1.0})
    return j
