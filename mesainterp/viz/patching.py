"""Patching heatmaps: layer × position and layer × head.

Input is the tidy patching table (columns kind, layer, head, position, value,
ci_low, ci_high, n; one row per patched site). `patching_heatmap` returns a
plotly figure whose hover shows the value, its confidence interval and n;
`patching_heatmap_mpl` draws the same grid as a static matplotlib figure, with
a dot on every cell whose interval excludes zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError, allowed
from mesainterp.viz._style import DIVERGING, new_figure, publication_style, require_columns

__all__ = [
    "PATCHING_COLUMNS",
    "PatchingGrid",
    "patching_grid",
    "patching_heatmap",
    "patching_heatmap_mpl",
]

PATCHING_COLUMNS = ("kind", "layer", "head", "position", "value", "ci_low", "ci_high", "n")
Axis = Literal["position", "head"]
ALL_POSITIONS = -1  # column index for sites that patch every position at once


@dataclass(frozen=True, kw_only=True)
class PatchingGrid:
    """The table pivoted to [layer, x] matrices (NaN where no site was patched)."""

    layers: list[int]
    columns: list[int]
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: np.ndarray
    kind: str


def patching_grid(
    table: pd.DataFrame, *, x: Axis = "position", kind: str | None = None
) -> PatchingGrid:
    """Pivot one kind of site to a layer × `x` grid; refuses duplicate cells."""
    require_columns(table, ("kind", "layer", x, "value", "ci_low", "ci_high", "n"), what="table")
    if x not in ("position", "head"):
        raise ConfigError("x", f"unknown axis {x!r}", allowed(("position", "head")))
    kinds = sorted(str(k) for k in table["kind"].dropna().unique())
    if kind is None:
        if len(kinds) != 1:
            raise ConfigError("kind", "the table holds several kinds; choose one", allowed(kinds))
        kind = kinds[0]
    elif kind not in kinds:
        raise ConfigError("kind", f"no rows of kind {kind!r}", allowed(kinds))
    rows = table[table["kind"] == kind]
    where = pd.to_numeric(rows[x], errors="coerce").astype(float)  # nullable Int64 → NaN
    if where.isna().all():
        if x == "head":
            raise ConfigError("x", f"{kind!r} rows have no head", allowed(("position",)))
        # Sites patched at every position at once: a single "all" column.
        keys = pd.DataFrame(
            {"layer": rows["layer"].astype(int), x: ALL_POSITIONS}, index=rows.index
        )
    else:
        rows = rows[where.notna()]
        keys = pd.DataFrame(
            {"layer": rows["layer"].astype(int), x: where[where.notna()].astype(int)},
            index=rows.index,
        )
    if keys.duplicated().any():
        other = "head" if x == "position" else "position"
        raise ConfigError(
            "table",
            f"several rows share a (layer, {x}) cell; select one {other} before drawing",
        )
    layers = sorted(int(v) for v in keys["layer"].unique())
    columns = sorted(int(v) for v in keys[x].unique())
    li = {v: i for i, v in enumerate(layers)}
    ci = {v: i for i, v in enumerate(columns)}
    shape = (len(layers), len(columns))
    grids = {name: np.full(shape, np.nan) for name in ("value", "ci_low", "ci_high", "n")}
    for layer, col, (_, row) in zip(keys["layer"], keys[x], rows.iterrows(), strict=True):
        for name, grid in grids.items():
            grid[li[int(layer)], ci[int(col)]] = float(row[name])
    return PatchingGrid(layers=layers, columns=columns, kind=kind, **grids)


def _tick_labels(columns: list[int], x: Axis, labels: Sequence[str] | None) -> list[str]:
    if x == "head":
        return [f"H{c}" for c in columns]
    if labels is None:
        return ["all" if c == ALL_POSITIONS else str(c) for c in columns]
    return [f"{c}:{labels[c]}" if 0 <= c < len(labels) else str(c) for c in columns]


def _limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def patching_heatmap(
    table: pd.DataFrame,
    *,
    x: Axis = "position",
    kind: str | None = None,
    position_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Interactive layer × `x` heatmap; hover shows value, CI and n."""
    grid = patching_grid(table, x=x, kind=kind)
    ticks = _tick_labels(grid.columns, x, position_labels)
    custom = np.stack([grid.ci_low, grid.ci_high, grid.n], axis=-1)
    limit = _limit(grid.value)
    fig = go.Figure(
        go.Heatmap(
            z=grid.value,
            x=ticks,
            y=[f"L{layer}" for layer in grid.layers],
            customdata=custom,
            colorscale=DIVERGING,
            zmid=0.0,
            zmin=-limit,
            zmax=limit,
            colorbar={"title": {"text": "effect"}},
            hovertemplate=(
                "layer %{y}, " + x + " %{x}<br>value %{z:.3f}"
                "<br>CI [%{customdata[0]:.3f}, %{customdata[1]:.3f}]"
                "<br>n %{customdata[2]:.0f}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        title=title or f"Patching {grid.kind}: layer × {x}",
        xaxis_title=x,
        yaxis_title="layer",
        yaxis={"autorange": "reversed"},
        template="simple_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def patching_heatmap_mpl(
    table: pd.DataFrame,
    *,
    x: Axis = "position",
    kind: str | None = None,
    position_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Static layer × `x` heatmap; a dot marks cells whose CI excludes zero."""
    grid = patching_grid(table, x=x, kind=kind)
    ticks = _tick_labels(grid.columns, x, position_labels)
    limit = _limit(grid.value)
    width = min(7.0, 1.6 + 0.22 * len(grid.columns))
    with publication_style():
        fig = new_figure(width, 0.9 + 0.28 * len(grid.layers))
        ax = fig.add_subplot()
        image = ax.imshow(
            np.ma.masked_invalid(grid.value),
            cmap=DIVERGING,
            vmin=-limit,
            vmax=limit,
            aspect="auto",
            interpolation="nearest",
        )
        rows, cols = np.nonzero((grid.ci_low > 0) | (grid.ci_high < 0))
        # White dots on dark cells, black on light ones, so every mark stays visible.
        dark = np.abs(grid.value[rows, cols]) > 0.6 * limit
        ax.scatter(cols, rows, s=4, c=np.where(dark, "white", "black"), marker="o", linewidths=0)
        ax.set_xticks(range(len(ticks)), ticks, rotation=90 if position_labels else 0)
        ax.set_yticks(range(len(grid.layers)), [f"L{layer}" for layer in grid.layers])
        ax.set_xlabel(x)
        ax.set_ylabel("layer")
        ax.set_title(title or f"Patching {grid.kind}: layer × {x}")
        fig.colorbar(image, ax=ax, label="effect", shrink=0.9)
    return fig
