"""Probe accuracy by layer (and position) with its control curves.

Input is the tidy probe table (columns layer, pos, target, value, se,
random_init, shuffled, majority; one row per fitted probe). The curves show the
probe on the trained model with a ±1.96·se band against the same probe on a
random-init model, on shuffled labels, and the majority-class baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError, allowed
from mesainterp.viz._style import (
    CONTROL_COLORS,
    SEQUENTIAL,
    new_figure,
    publication_style,
    require_columns,
)

__all__ = [
    "PROBE_COLUMNS",
    "probe_curves",
    "probe_curves_mpl",
    "probe_grid",
    "probe_heatmap",
    "probe_heatmap_mpl",
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
) -> pd.DataFrame:
    """Rows of one target (and, when given, one position / hook), sorted by layer,
    with a `curve` column naming the line each row belongs to. `hook` is a full
    hook name or a hook point such as "hook_resid_post" (every layer's)."""
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
    rows["curve"] = [f"pos {p}" for p in rows["pos"]]
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


def _y_axis(metric: str) -> dict[str, object]:
    return {"range": [0, 1.02]} if metric == "accuracy" else {}


def _title(target: str, pos: int | None, metric: str = "accuracy") -> str:
    where = f" at position {pos}" if pos is not None else ""
    return f"Probe for {target!r}{where}: {metric} by layer"


def probe_curves(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    pos: int | None = None,
    hook: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Interactive accuracy-by-layer curves: one per position unless `pos` is given,
    plus the three controls (averaged over the shown positions)."""
    rows = probe_rows(table, target=target, pos=pos, hook=hook)
    target = str(rows["target"].iloc[0])
    metric = _metric(rows)
    fig = go.Figure()
    for p, group in rows.groupby("curve", sort=False):
        band = Z95 * group["se"].to_numpy(float)
        fig.add_trace(
            go.Scatter(
                x=group["layer"],
                y=group["value"],
                error_y={"type": "data", "array": band, "visible": True, "thickness": 1},
                mode="lines+markers",
                name=str(p),
                hovertemplate="layer %{x}<br>"
                + metric
                + " %{y:.3f} ± %{error_y.array:.3f}<extra>"
                + str(p)
                + "</extra>",
            )
        )
    controls = rows.groupby("layer", sort=True)[list(CONTROLS)].mean()
    for name in CONTROLS:
        if controls[name].isna().all():
            continue  # e.g. no random-init twin was probed
        fig.add_trace(
            go.Scatter(
                x=controls.index,
                y=controls[name],
                mode="lines",
                name=name.replace("_", "-"),
                line={"dash": "dash", "color": CONTROL_COLORS[name]},
            )
        )
    fig.update_layout(
        title=title or _title(target, pos, metric),
        xaxis_title="layer",
        yaxis_title=metric,
        yaxis=_y_axis(metric),
        template="simple_white",
    )
    return fig


def probe_curves_mpl(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    pos: int | None = None,
    hook: str | None = None,
    title: str | None = None,
) -> Figure:
    """Static version of `probe_curves`, with shaded ±1.96·se bands."""
    rows = probe_rows(table, target=target, pos=pos, hook=hook)
    target = str(rows["target"].iloc[0])
    metric = _metric(rows)
    with publication_style():
        fig = new_figure(3.4, 2.4)
        ax = fig.add_subplot()
        for p, group in rows.groupby("curve", sort=False):
            layer = group["layer"].to_numpy(float)
            value = group["value"].to_numpy(float)
            band = Z95 * group["se"].to_numpy(float)
            (line,) = ax.plot(layer, value, marker="o", markersize=3, label=str(p))
            ax.fill_between(layer, value - band, value + band, alpha=0.2, color=line.get_color())
        controls = rows.groupby("layer", sort=True)[list(CONTROLS)].mean()
        for name in CONTROLS:
            if controls[name].isna().all():
                continue
            ax.plot(
                controls.index.to_numpy(float),
                controls[name].to_numpy(float),
                linestyle="--",
                color=CONTROL_COLORS[name],
                label=name.replace("_", "-"),
            )
        if metric == "accuracy":
            ax.set_ylim(0, 1.02)
        ax.set_xlabel("layer")
        ax.set_ylabel(metric)
        ax.set_title(title or _title(target, pos, metric))
        ax.legend(frameon=False, loc="best", ncols=2)
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


def probe_heatmap(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    hook: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Interactive layer × position grid of probe scores (hover: se and controls)."""
    target, layers, positions, grids = probe_grid(table, target=target, hook=hook)
    metric = _metric(table[table["target"] == target])
    fields = ("value", "se", *CONTROLS)
    custom = np.stack([grids[f] for f in fields[1:]], axis=-1)
    fig = go.Figure(
        go.Heatmap(
            z=grids["value"],
            x=[str(p) for p in positions],
            y=[f"L{layer}" for layer in layers],
            zmin=0,
            zmax=1,
            colorscale=SEQUENTIAL,
            customdata=custom,
            colorbar={"title": {"text": metric}},
            hovertemplate=(
                "layer %{y}, pos %{x}<br>score %{z:.3f} (se %{customdata[0]:.3f})"
                "<br>random-init %{customdata[1]:.3f}<br>shuffled %{customdata[2]:.3f}"
                "<br>majority %{customdata[3]:.3f}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        title=title or f"Probe for {target!r}: {metric} by layer and position",
        xaxis_title="position",
        yaxis_title="layer",
        yaxis={"autorange": "reversed"},
        template="simple_white",
    )
    return fig


def probe_heatmap_mpl(
    table: pd.DataFrame,
    *,
    target: str | None = None,
    hook: str | None = None,
    title: str | None = None,
) -> Figure:
    """Static layer × position grid of probe scores."""
    target, layers, positions, grids = probe_grid(table, target=target, hook=hook)
    metric = _metric(table[table["target"] == target])
    with publication_style():
        fig = new_figure(min(7.0, 1.6 + 0.3 * len(positions)), 0.9 + 0.28 * len(layers))
        ax = fig.add_subplot()
        image = ax.imshow(
            grids["value"], cmap=SEQUENTIAL, vmin=0, vmax=1, aspect="auto", interpolation="nearest"
        )
        ax.set_xticks(range(len(positions)), [str(p) for p in positions])
        ax.set_yticks(range(len(layers)), [f"L{layer}" for layer in layers])
        ax.set_xlabel("position")
        ax.set_ylabel("layer")
        ax.set_title(title or f"Probe for {target!r}: {metric} by layer and position")
        fig.colorbar(image, ax=ax, label=metric, shrink=0.9)
    return fig
