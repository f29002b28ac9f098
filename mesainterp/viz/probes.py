"""Probe scores by layer (and position), each beside its own controls.

Input is the tidy probe table (columns layer, pos, target, value, se,
random_init, shuffled, majority; one row per fitted probe). `probe_curves` draws
one panel per position: the probe on the trained model with a ±1.96·se band,
and the same position's controls (the probe on a random-init model, on shuffled
labels, the majority-class baseline). Controls are never averaged over
positions: a random-init twin can score as high as the probe at one position
while its average sits far below. `probe_heatmap` is the layer × position grid.
Both take `backend="plotly"` (interactive) or `"matplotlib"` (static).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from mesainterp.errors import ConfigError, allowed
from mesainterp.viz._heatmap import HeatPanel, HeatStyle, draw_heatmaps
from mesainterp.viz._positions import PositionRoles, position_label, split_columns
from mesainterp.viz._style import (
    CONTROL_COLORS,
    SEQUENTIAL,
    Backend,
    check_backend,
    new_figure,
    publication_style,
    require_columns,
)

__all__ = [
    "PROBE_COLUMNS",
    "probe_curves",
    "probe_grid",
    "probe_heatmap",
    "probe_rows",
]

PROBE_COLUMNS = ("layer", "pos", "target", "value", "se", "random_init", "shuffled", "majority")
CONTROLS = ("random_init", "shuffled", "majority")
Z95 = 1.96


def probe_rows(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    pos: int | None = None,
    hook: str | None = None,
    position_labels: Sequence[str] | None = None,
    position_roles: PositionRoles | None = None,
) -> pd.DataFrame:
    """Rows of one target (and, when given, one position / hook), sorted by layer,
    with a `curve` column naming the line each row belongs to ("pos 5:Mary (IO)"
    when tokens and roles are given). `hook` is a full hook name or a hook point
    such as "hook_resid_post" (every layer's)."""
    require_columns(table, PROBE_COLUMNS, what="table")
    targets = sorted(str(t) for t in table["target"].unique())
    if target is None:
        if len(targets) != 1:
            raise ConfigError(
                "target", "the table holds several targets; choose one", allowed(targets)
            )
        target = targets[0]
    elif target not in targets:
        raise ConfigError("target", f"no rows for target {target!r}", allowed(targets))
    rows = table[table["target"] == target]
    if hook is not None:
        # A full hook name, or a hook point shared by every layer ("hook_resid_post").
        names = rows["hook"].astype(str) if "hook" in rows else pd.Series([], dtype=str)
        points = names.str.rsplit(".", n=1).str[-1]
        keep = (names == hook) | (points == hook)
        if not keep.any():
            raise ConfigError("hook", f"no rows at hook {hook!r}", allowed(sorted(set(points))))
        rows = rows[keep]
    if pos is not None:
        positions = sorted(int(p) for p in rows["pos"].unique())
        if pos not in positions:
            raise ConfigError("pos", f"no rows at position {pos}", allowed(positions))
        rows = rows[rows["pos"] == pos]
    rows = rows.sort_values(["pos", "layer"]).copy()
    rows["curve"] = [
        f"pos {position_label(int(p), position_labels, position_roles)}" for p in rows["pos"]
    ]
    if rows.duplicated(subset=["layer", "pos"]).any():
        if "hook" not in rows:
            raise ConfigError("table", "several rows share a (layer, pos); filter the table first")
        # Several hook points per layer (e.g. resid_mid and resid_post): one line each.
        short = rows["hook"].astype(str).str.rsplit(".", n=1).str[-1]
        rows["curve"] = rows["curve"] + " · " + short
        rows = rows.sort_values(["curve", "layer"])
    return rows


def _metric(rows: pd.DataFrame) -> str:
    return str(rows["metric"].iloc[0]) if "metric" in rows else "accuracy"


def _title(target: str, where: str | None, metric: str = "accuracy") -> str:
    at = f" at position {where}" if where is not None else ""
    return f"Probe for {target!r}{at}: {metric} by layer"


def _control_name(name: str) -> str:
    return name.replace("_", "-")


@overload
def probe_curves(
    table: pd.DataFrame,
    *,
    target: str | None = ...,
    pos: int | None = ...,
    hook: str | None = ...,
    position_labels: Sequence[str] | None = ...,
    position_roles: PositionRoles | None = ...,
    title: str | None = ...,
    backend: Literal["plotly"] = ...,
) -> go.Figure: ...
@overload
def probe_curves(
    table: pd.DataFrame,
    *,
    target: str | None = ...,
    pos: int | None = ...,
    hook: str | None = ...,
    position_labels: Sequence[str] | None = ...,
    position_roles: PositionRoles | None = ...,
    title: str | None = ...,
    backend: Literal["matplotlib"],
) -> Figure: ...
def probe_curves(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    pos: int | None = None,
    hook: str | None = None,
    position_labels: Sequence[str] | None = None,
    position_roles: PositionRoles | None = None,
    title: str | None = None,
    backend: Backend = "plotly",
) -> go.Figure | Figure:
    """Score-by-layer curves, one panel per position (or just `pos`), each with a
    ±1.96·se band and that position's random-init, shuffled and majority controls."""
    check_backend(backend)
    rows = probe_rows(
        table,
        target=target,
        pos=pos,
        hook=hook,
        position_labels=position_labels,
        position_roles=position_roles,
    )
    target = str(rows["target"].iloc[0])
    metric = _metric(rows)
    where = None if pos is None else position_label(pos, position_labels, position_roles)
    heading = title or _title(target, where, metric)
    curves = [(str(c), group) for c, group in rows.groupby("curve", sort=False)]
    if backend == "plotly":
        return _curves_plotly(curves, metric, heading)
    return _curves_matplotlib(curves, metric, heading)


def _panel_grid(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return math.ceil(n / cols), cols


def _curves_plotly(curves: list[tuple[str, pd.DataFrame]], metric: str, heading: str) -> go.Figure:
    n_rows, n_cols = _panel_grid(len(curves))
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        shared_yaxes=True,
        subplot_titles=[c for c, _ in curves] if len(curves) > 1 else None,
        vertical_spacing=min(0.15, 0.6 / n_rows),
    )
    for i, (curve, group) in enumerate(curves):
        cell = {"row": i // n_cols + 1, "col": i % n_cols + 1}
        first = i == 0  # one legend entry per line kind, shared by every panel
        layer = group["layer"].to_numpy(float)
        fig.add_trace(
            go.Scatter(
                x=layer,
                y=group["value"].to_numpy(float),
                error_y={
                    "type": "data",
                    "array": Z95 * group["se"].to_numpy(float),
                    "visible": True,
                    "thickness": 1,
                },
                mode="lines+markers",
                name="probe",
                legendgroup="probe",
                showlegend=first,
                meta=curve,
                line={"color": CONTROL_COLORS["value"]},
                hovertemplate=f"{curve}<br>layer %{{x}}<br>{metric} %{{y:.3f}}"
                " ± %{error_y.array:.3f}<extra>probe</extra>",
            ),
            **cell,
        )
        for name in CONTROLS:
            values = group[name].to_numpy(float)
            if np.isnan(values).all():
                continue  # e.g. no random-init twin was probed
            fig.add_trace(
                go.Scatter(
                    x=layer,
                    y=values,
                    mode="lines",
                    name=_control_name(name),
                    legendgroup=name,
                    showlegend=first,
                    meta=curve,
                    line={"dash": "dash", "color": CONTROL_COLORS[name]},
                    hovertemplate=f"{curve}<br>layer %{{x}}<br>{metric} %{{y:.3f}}"
                    f"<extra>{_control_name(name)}</extra>",
                ),
                **cell,
            )
    fig.update_xaxes(title_text="layer")
    fig.update_yaxes(title_text=metric, col=1)
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(
        title=heading,
        template="simple_white",
        height=160 + 260 * n_rows,
        width=None if n_cols < 3 else 300 * n_cols,
    )
    return fig


def _curves_matplotlib(curves: list[tuple[str, pd.DataFrame]], metric: str, heading: str) -> Figure:
    n_rows, n_cols = _panel_grid(len(curves))
    with publication_style():
        fig = new_figure(0.6 + 2.4 * n_cols, 0.8 + 1.9 * n_rows)
        axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True).ravel()
        for ax, (curve, group) in zip(axes, curves, strict=False):
            layer = group["layer"].to_numpy(float)
            value = group["value"].to_numpy(float)
            band = Z95 * group["se"].to_numpy(float)
            color = CONTROL_COLORS["value"]
            ax.plot(layer, value, marker="o", markersize=3, color=color, label="probe")
            ax.fill_between(layer, value - band, value + band, alpha=0.2, color=color)
            for name in CONTROLS:
                values = group[name].to_numpy(float)
                if np.isnan(values).all():
                    continue
                ax.plot(layer, values, linestyle="--", color=CONTROL_COLORS[name],
                        label=_control_name(name))  # fmt: skip
            if metric == "accuracy":
                ax.set_ylim(0, 1.02)
            ax.set_xlabel("layer")
            if len(curves) > 1:
                ax.set_title(curve)
        axes[0].set_ylabel(metric)
        for ax in axes[len(curves) :]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
        fig.suptitle(heading)
    return fig


def probe_grid(
    table: pd.DataFrame, *, target: str | None = None, hook: str | None = None
) -> tuple[str, list[int], list[int], dict[str, np.ndarray]]:
    """(target, layers, positions, {field: [layer, pos] matrix}) for value, se and controls."""
    rows = probe_rows(table, target=target, hook=hook)
    if rows.duplicated(subset=["layer", "pos"]).any():
        hooks = sorted(str(h) for h in rows["hook"].unique())
        raise ConfigError("hook", "several hooks per (layer, pos); choose one", allowed(hooks))
    layers = sorted(int(v) for v in rows["layer"].unique())
    positions = sorted(int(v) for v in rows["pos"].unique())
    fields = ("value", "se", *CONTROLS)
    grids = {f: np.full((len(layers), len(positions)), np.nan) for f in fields}
    for _, row in rows.iterrows():
        i, j = layers.index(int(row["layer"])), positions.index(int(row["pos"]))
        for f in fields:
            grids[f][i, j] = float(row[f])
    return str(rows["target"].iloc[0]), layers, positions, grids


_GRID_HOVER = (
    "layer %{y}, pos %{x}<br>score %{z:.3f} (se %{customdata[0]:.3f})"
    "<br>random-init %{customdata[1]:.3f}<br>shuffled %{customdata[2]:.3f}"
    "<br>majority %{customdata[3]:.3f}<extra></extra>"
)


@overload
def probe_heatmap(
    table: pd.DataFrame,
    *,
    target: str | None = ...,
    hook: str | None = ...,
    position_labels: Sequence[str] | None = ...,
    position_roles: PositionRoles | None = ...,
    title: str | None = ...,
    max_columns: int = ...,
    backend: Literal["plotly"] = ...,
) -> go.Figure: ...
@overload
def probe_heatmap(
    table: pd.DataFrame,
    *,
    target: str | None = ...,
    hook: str | None = ...,
    position_labels: Sequence[str] | None = ...,
    position_roles: PositionRoles | None = ...,
    title: str | None = ...,
    max_columns: int = ...,
    backend: Literal["matplotlib"],
) -> Figure: ...
def probe_heatmap(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    hook: str | None = None,
    position_labels: Sequence[str] | None = None,
    position_roles: PositionRoles | None = None,
    title: str | None = None,
    max_columns: int = 40,
    backend: Backend = "plotly",
) -> go.Figure | Figure:
    """Layer × position grid of probe scores, every position labelled (token and
    role when given); hover shows the se and every control. A long sequence is
    split into panels of at most `max_columns` positions."""
    check_backend(backend)
    target, layers, positions, grids = probe_grid(table, target=target, hook=hook)
    metric = _metric(table[table["target"] == target])
    ticks = [position_label(p, position_labels, position_roles) for p in positions]
    custom = np.stack([grids[f] for f in ("se", *CONTROLS)], axis=-1)
    parts = split_columns(len(positions), max_columns)
    panels = [
        HeatPanel(
            title=f"positions {ticks[part[0]]} to {ticks[part[-1]]}" if len(parts) > 1 else "",
            z=grids["value"][:, part],
            x=[ticks[i] for i in part],
            y=[f"L{layer}" for layer in layers],
            custom=custom[:, part],
        )
        for part in parts
    ]
    style = HeatStyle(
        colorscale=SEQUENTIAL,
        zmin=0.0,
        zmax=1.0,
        zmid=None,
        colorbar=metric,
        hover=_GRID_HOVER,
        xlabel="position",
        ylabel="layer",
    )
    heading = title or f"Probe for {target!r}: {metric} by layer and position"
    return draw_heatmaps(panels, style, title=heading, backend=backend)
