"""In-context regression: context points, the model's predictions and references.

`predictions` maps a name ("model", "least squares", "one GD step", ...) to
predictions at the query points. With 1-D inputs the figure shows y against x;
with more dimensions it shows each prediction against the query targets (or,
without targets, against the first prediction series) with the y = x line.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.viz._style import new_figure, publication_style

__all__ = ["icl_predictions_figure", "icl_regression_figure"]

ArrayLike = Float[Tensor, "..."] | np.ndarray
_MARKERS = ("o", "s", "^", "D", "v", "P")
_COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _array(value: ArrayLike, name: str) -> np.ndarray:
    array = (
        value.detach().float().cpu().numpy()
        if isinstance(value, Tensor)
        else np.asarray(value, dtype=float)
    )
    if not np.isfinite(array).all():
        raise ConfigError(name, "contains NaN or infinite values")
    return array


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim == 1:
        return x[:, None]
    if x.ndim != 2:
        raise ConfigError(name, f"needs shape [n] or [n, d], got {x.shape}")
    return x


def icl_regression_figure(
    context_x: ArrayLike,
    context_y: ArrayLike,
    query_x: ArrayLike,
    predictions: Mapping[str, ArrayLike],
    *,
    query_y: ArrayLike | None = None,
    title: str | None = None,
) -> Figure:
    """Context points and each prediction series at the query points."""
    cx = _as_matrix(_array(context_x, "context_x"), "context_x")
    cy = _array(context_y, "context_y").reshape(-1)
    qx = _as_matrix(_array(query_x, "query_x"), "query_x")
    if len(cx) != len(cy):
        raise ConfigError("context_y", f"needs one value per context point: {len(cy)} vs {len(cx)}")
    if cx.shape[1] != qx.shape[1]:
        raise ConfigError(
            "query_x", f"dimension {qx.shape[1]} differs from context_x's {cx.shape[1]}"
        )
    if not predictions:
        raise ConfigError("predictions", "needs at least one series, e.g. {'model': ...}")
    series = {
        name: _array(v, f"predictions[{name!r}]").reshape(-1) for name, v in predictions.items()
    }
    for name, values in series.items():
        if len(values) != len(qx):
            raise ConfigError(
                "predictions", f"{name!r} has {len(values)} values for {len(qx)} query points"
            )
    qy = None if query_y is None else _array(query_y, "query_y").reshape(-1)
    with publication_style():
        fig = new_figure(3.4, 2.8)
        ax = fig.add_subplot()
        if cx.shape[1] == 1:
            ax.scatter(cx[:, 0], cy, s=14, color="#999999", label="context", zorder=1)
            order = np.argsort(qx[:, 0])
            if qy is not None:
                ax.scatter(
                    qx[:, 0],
                    qy,
                    s=30,
                    facecolors="none",
                    edgecolors="black",
                    label="query target",
                    zorder=2,
                )
            for i, (name, values) in enumerate(series.items()):
                ax.plot(
                    qx[order, 0],
                    values[order],
                    marker=_MARKERS[i % 6],
                    markersize=3,
                    linewidth=1.0,
                    color=_COLORS[i % 6],
                    label=name,
                    zorder=3 + i,
                )
            ax.set_xlabel("x")
            ax.set_ylabel("y")
        else:
            reference_name = "query target" if qy is not None else next(iter(series))
            reference = qy if qy is not None else series[reference_name]
            everything = np.concatenate([reference, *series.values()])
            lo, hi = float(everything.min()), float(everything.max())
            ax.plot([lo, hi], [lo, hi], linestyle=":", color="#999999", linewidth=0.8)
            for i, (name, values) in enumerate(series.items()):
                ax.scatter(
                    reference,
                    values,
                    s=12,
                    marker=_MARKERS[i % 6],
                    color=_COLORS[i % 6],
                    label=name,
                    alpha=0.8,
                )
            ax.set_xlabel(reference_name)
            ax.set_ylabel("prediction")
        ax.legend(frameon=False)
        ax.set_title(
            title or f"In-context regression ({len(cx)} context points, d = {cx.shape[1]})"
        )
    return fig


def icl_predictions_figure(
    target: ArrayLike,
    predictions: Mapping[str, ArrayLike],
    *,
    title: str | None = None,
) -> Figure:
    """Across a batch: each prediction series (e.g. "model", "least squares",
    "one GD step") against the true query y, with y = x and each series' MSE."""
    y = _array(target, "target").reshape(-1)
    if not predictions:
        raise ConfigError("predictions", "needs at least one series, e.g. {'model': ...}")
    series = {
        name: _array(v, f"predictions[{name!r}]").reshape(-1) for name, v in predictions.items()
    }
    for name, values in series.items():
        if len(values) != len(y):
            raise ConfigError(
                "predictions", f"{name!r} has {len(values)} values for {len(y)} targets"
            )
    everything = np.concatenate([y, *series.values()])
    lo, hi = float(everything.min()), float(everything.max())
    with publication_style():
        fig = new_figure(3.4, 3.0)
        ax = fig.add_subplot()
        ax.plot([lo, hi], [lo, hi], linestyle=":", color="#999999", linewidth=0.8)
        for i, (name, values) in enumerate(series.items()):
            mse = float(np.mean((values - y) ** 2))
            ax.scatter(
                y,
                values,
                s=8,
                marker=_MARKERS[i % 6],
                color=_COLORS[i % 6],
                alpha=0.7,
                label=f"{name} (MSE {mse:.3g})",
            )
        ax.set_xlabel("true y at the query")
        ax.set_ylabel("prediction")
        ax.set_aspect("equal")
        ax.legend(frameon=False)
        ax.set_title(title or f"In-context regression: predictions on {len(y)} examples")
    return fig
