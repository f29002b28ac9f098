"""Patching heatmaps: layer × position and layer × head.

Input is the tidy patching table (columns kind, layer, head, position, value,
ci_low, ci_high, n; one row per patched site). `patching_heatmap` draws it with
either backend: plotly (hover shows the value, its confidence interval and n) or
matplotlib (a dot on every cell whose interval excludes zero).

Every position is shown and labelled with its token and role when they are given.
A heads-by-position sweep gets one layer × head panel per position; a long
sequence is split into panels of at most `max_columns` positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError, allowed
from mesainterp.viz._heatmap import HeatPanel, HeatStyle, draw_heatmaps
from mesainterp.viz._positions import ALL_POSITIONS, PositionRoles, position_label, split_columns
from mesainterp.viz._style import DIVERGING, Backend, check_backend, require_columns

__all__ = [
    "PATCHING_COLUMNS",
    "PatchingGrid",
    "patching_grid",
    "patching_heatmap",
]

PATCHING_COLUMNS = ("kind", "layer", "head", "position", "value", "ci_low", "ci_high", "n")
Axis = Literal["position", "head"]
_HOVER = (
    "layer %{y}, {x} %{x}<br>value %{z:.3f}"
    "<br>CI [%{customdata[0]:.3f}, %{customdata[1]:.3f}]"
    "<br>n %{customdata[2]:.0f}<extra></extra>"
)


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


def _kind_rows(table: pd.DataFrame, kind: str | None) -> tuple[str, pd.DataFrame]:
    kinds = sorted(str(k) for k in table["kind"].dropna().unique())
    if kind is None:
        if len(kinds) != 1:
            raise ConfigError("kind", "the table holds several kinds; choose one", allowed(kinds))
        kind = kinds[0]
    elif kind not in kinds:
        raise ConfigError("kind", f"no rows of kind {kind!r}", allowed(kinds))
    return kind, table[table["kind"] == kind]


def patching_grid(
    table: pd.DataFrame, *, x: Axis = "position", kind: str | None = None
) -> PatchingGrid:
    """Pivot one kind of site to a layer × `x` grid; refuses duplicate cells."""
    require_columns(table, ("kind", "layer", x, "value", "ci_low", "ci_high", "n"), what="table")
    if x not in ("position", "head"):
        raise ConfigError("x", f"unknown axis {x!r}", allowed(("position", "head")))
    kind, rows = _kind_rows(table, kind)
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


def _panel(grid: PatchingGrid, cols: Sequence[int], ticks: list[str], title: str) -> HeatPanel:
    idx = list(cols)
    low, high = grid.ci_low[:, idx], grid.ci_high[:, idx]
    return HeatPanel(
        title=title,
        z=grid.value[:, idx],
        x=[ticks[i] for i in idx],
        y=[f"L{layer}" for layer in grid.layers],
        custom=np.stack([low, high, grid.n[:, idx]], axis=-1),
        marks=(low > 0) | (high < 0),
    )


def _limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


@overload
def patching_heatmap(
    table: pd.DataFrame,
    *,
    x: Axis = ...,
    kind: str | None = ...,
    position_labels: Sequence[str] | None = ...,
    position_roles: PositionRoles | None = ...,
    title: str | None = ...,
    max_columns: int = ...,
    backend: Literal["plotly"] = ...,
) -> go.Figure: ...
@overload
def patching_heatmap(
    table: pd.DataFrame,
    *,
    x: Axis = ...,
    kind: str | None = ...,
    position_labels: Sequence[str] | None = ...,
    position_roles: PositionRoles | None = ...,
    title: str | None = ...,
    max_columns: int = ...,
    backend: Literal["matplotlib"],
) -> Figure: ...
def patching_heatmap(
    table: pd.DataFrame,
    *,
    x: Axis = "position",
    kind: str | None = None,
    position_labels: Sequence[str] | None = None,
    position_roles: PositionRoles | None = None,
    title: str | None = None,
    max_columns: int = 40,
    backend: Backend = "plotly",
) -> go.Figure | Figure:
    """Layer × `x` heatmap of one kind of site, every position shown and labelled.

    position_labels: the token at each position; position_roles: a role per
    position (e.g. {3: "S1", 5: "IO"}). With x="head" and several positions in the
    table, one layer × head panel per position. `max_columns`: positions per panel.
    """
    check_backend(backend)
    if isinstance(max_columns, bool) or not isinstance(max_columns, int) or max_columns < 1:
        raise ConfigError("max_columns", f"expected a positive int, got {max_columns!r}")
    require_columns(table, ("kind", "layer", x, "value", "ci_low", "ci_high", "n"), what="table")
    kind_name, rows = _kind_rows(table, kind)

    def label(pos: int) -> str:
        return position_label(pos, position_labels, position_roles)

    panels: list[HeatPanel] = []
    if x == "head" and "position" in rows and rows["position"].nunique(dropna=True) > 1:
        # Heads by position: a panel per position, none left out.
        for pos in sorted(int(p) for p in rows["position"].dropna().unique()):
            grid = patching_grid(rows[rows["position"] == pos], x="head", kind=kind_name)
            ticks = [f"H{c}" for c in grid.columns]
            panels.append(_panel(grid, range(len(ticks)), ticks, f"position {label(pos)}"))
        if rows["position"].isna().any():
            grid = patching_grid(rows[rows["position"].isna()], x="head", kind=kind_name)
            ticks = [f"H{c}" for c in grid.columns]
            panels.append(_panel(grid, range(len(ticks)), ticks, "all positions"))
    else:
        grid = patching_grid(rows, x=x, kind=kind_name)
        ticks = [f"H{c}" for c in grid.columns] if x == "head" else [label(c) for c in grid.columns]
        parts = split_columns(len(ticks), max_columns)
        for part in parts:
            where = f"{x}s {ticks[part[0]]} to {ticks[part[-1]]}" if len(parts) > 1 else ""
            panels.append(_panel(grid, part, ticks, where))
    limit = _limit(np.concatenate([p.z.ravel() for p in panels]))
    style = HeatStyle(
        colorscale=DIVERGING,
        zmin=-limit,
        zmax=limit,
        zmid=0.0,
        colorbar="effect",
        hover=_HOVER.replace("{x}", x),
        xlabel=x,
        ylabel="layer",
    )
    heading = title or f"Patching {kind_name}: layer × {x}"
    return draw_heatmaps(panels, style, title=heading, backend=backend)
