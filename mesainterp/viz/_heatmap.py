"""One layer × column heatmap drawer for every heatmap figure, in both backends.

A figure is a list of panels sharing one colour scale: the facets of a
heads-by-position sweep (one panel per position) or the pieces of a long
sequence (at most `max_columns` positions per panel). Every column of every
panel is labelled; nothing is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from mesainterp.viz._style import Backend, check_backend, new_figure, publication_style

__all__ = ["HeatPanel", "HeatStyle", "draw_heatmaps"]


@dataclass(frozen=True, kw_only=True)
class HeatPanel:
    """One grid: z [rows, cols], its tick labels, hover values [rows, cols, k] and,
    optionally, the cells to mark with a dot (e.g. an interval that excludes zero)."""

    title: str
    z: np.ndarray
    x: list[str]
    y: list[str]
    custom: np.ndarray
    marks: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class HeatStyle:
    """What every panel of one figure shares."""

    colorscale: str
    zmin: float
    zmax: float
    zmid: float | None
    colorbar: str
    hover: str  # plotly hover template over %{x}, %{y}, %{z} and %{customdata[i]}
    xlabel: str
    ylabel: str


def _grid(n: int, max_panel_columns: int) -> tuple[int, int]:
    cols = max(1, min(n, max_panel_columns))
    return math.ceil(n / cols), cols


def draw_heatmaps(
    panels: Sequence[HeatPanel],
    style: HeatStyle,
    *,
    title: str,
    backend: Backend,
    panels_per_row: int = 4,
) -> go.Figure | Figure:
    """All panels in a grid of at most `panels_per_row` columns, one colour scale."""
    check_backend(backend)
    if backend == "plotly":
        return _plotly(panels, style, title, panels_per_row)
    return _matplotlib(panels, style, title, panels_per_row)


def _plotly(panels: Sequence[HeatPanel], style: HeatStyle, title: str, per_row: int) -> go.Figure:
    n_rows, n_cols = _grid(len(panels), per_row)
    if len(panels) == 1:
        fig = go.Figure()
    else:
        fig = make_subplots(
            rows=n_rows,
            cols=n_cols,
            subplot_titles=[p.title for p in panels],
            horizontal_spacing=0.04,
            vertical_spacing=min(0.12, 0.5 / n_rows),
        )
    for i, panel in enumerate(panels):
        heat = go.Heatmap(
            z=panel.z,
            x=panel.x,
            y=panel.y,
            customdata=panel.custom,
            coloraxis="coloraxis",
            hovertemplate=style.hover,
        )
        if len(panels) == 1:
            fig.add_trace(heat)
        else:
            fig.add_trace(heat, row=i // n_cols + 1, col=i % n_cols + 1)
    widest = max(len(p.x) for p in panels)
    # Category axes with a tick every column: plotly would otherwise thin the labels.
    fig.update_xaxes(title_text=style.xlabel, type="category", tickmode="linear", dtick=1)
    fig.update_yaxes(title_text=style.ylabel, autorange="reversed", type="category")
    fig.update_layout(
        title=title,
        coloraxis={
            "colorscale": style.colorscale,
            "cmin": style.zmin,
            "cmax": style.zmax,
            **({"cmid": style.zmid} if style.zmid is not None else {}),
            "colorbar": {"title": {"text": style.colorbar}},
        },
        template="simple_white",
        # Room for every tick label: a wide grid scrolls instead of squeezing.
        width=max(500, 120 + n_cols * (40 + 24 * widest)) if widest > 12 else None,
        height=120 + n_rows * (60 + 26 * max(len(p.y) for p in panels)),
        margin={"l": 60, "r": 20, "t": 70, "b": 60},
    )
    return fig


def _matplotlib(panels: Sequence[HeatPanel], style: HeatStyle, title: str, per_row: int) -> Figure:
    n_rows, n_cols = _grid(len(panels), per_row)
    widest = max(len(p.x) for p in panels)
    tallest = max(len(p.y) for p in panels)
    long_labels = any(len(t) > 3 for p in panels for t in p.x)
    with publication_style():
        fig = new_figure(
            1.2 + n_cols * (0.5 + 0.2 * widest),
            0.6 + n_rows * (0.5 + 0.25 * tallest + (0.5 if long_labels else 0.0)),
        )
        axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
        images = []
        for ax, panel in zip(axes, panels, strict=False):
            image = ax.imshow(
                np.ma.masked_invalid(panel.z),
                cmap=style.colorscale,
                vmin=style.zmin,
                vmax=style.zmax,
                aspect="auto",
                interpolation="nearest",
            )
            images.append(image)
            if panel.marks is not None:
                rows, cols = np.nonzero(panel.marks)
                # White dots on dark cells, black on light ones, so every mark shows.
                mid = style.zmid if style.zmid is not None else (style.zmin + style.zmax) / 2
                dark = np.abs(panel.z[rows, cols] - mid) > 0.6 * (style.zmax - mid)
                ax.scatter(cols, rows, s=4, c=np.where(dark, "white", "black"), linewidths=0)
            ax.set_xticks(range(len(panel.x)), panel.x, rotation=90 if long_labels else 0)
            ax.set_yticks(range(len(panel.y)), panel.y)
            ax.set_xlabel(style.xlabel)
            ax.set_ylabel(style.ylabel)
            if len(panels) > 1:
                ax.set_title(panel.title)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        if len(panels) > 1:
            fig.suptitle(title)
        else:
            axes[0].set_title(title)
        fig.colorbar(images[0], ax=list(axes[: len(panels)]), label=style.colorbar, shrink=0.9)
    return fig
