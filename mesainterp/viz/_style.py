"""Shared look of every figure: publication matplotlib settings, palettes, checks.

Matplotlib figures are built with the object-oriented `matplotlib.figure.Figure`
(never pyplot), so no global figure registry or theme is touched; the
publication settings apply only while a figure is being built (`rc_context`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mesainterp.errors import ConfigError, allowed

__all__ = [
    "BACKENDS",
    "CONTROL_COLORS",
    "DIVERGING",
    "SEQUENTIAL",
    "Backend",
    "check_backend",
    "new_figure",
    "overlay_legend",
    "publication_style",
    "require_columns",
]

# Colour-blind-safe (Okabe–Ito) colours for control curves and highlights.
CONTROL_COLORS = {
    "value": "#0072B2",
    "random_init": "#E69F00",
    "shuffled": "#009E73",
    "majority": "#7F7F7F",
    "highlight": "#D55E00",
    "path": "#0072B2",
}
DIVERGING = "RdBu"

# Every data figure is built by one function with a `backend` argument: an
# interactive plotly figure for notebooks and the HTML report, or a static
# matplotlib figure for papers.
Backend = Literal["plotly", "matplotlib"]
BACKENDS: tuple[str, ...] = get_args(Backend)


def check_backend(backend: object) -> None:
    """Refuse an unknown backend before any drawing."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}", allowed(BACKENDS))


SEQUENTIAL = "Blues"

_PUBLICATION_RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # embed TrueType so text stays editable in PDFs
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # keep text as text in SVG
    "svg.hashsalt": "mesainterp",  # deterministic SVG ids
}


@contextmanager
def publication_style() -> Iterator[None]:
    """Publication settings for the figures built inside this block only."""
    with matplotlib.rc_context(_PUBLICATION_RC):  # type: ignore[arg-type]
        yield


def new_figure(width: float = 3.4, height: float = 2.6) -> Figure:
    """A pyplot-free figure (inches; 3.4 in is one column of a two-column paper)."""
    return Figure(figsize=(width, height), dpi=150, layout="constrained")


def require_columns(table: pd.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Refuse a table that lacks the columns a figure reads."""
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(what, f"expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            what,
            f"table lacks column(s) {allowed(missing)}",
            allowed(list(columns)),
        )
    if table.empty:
        raise ConfigError(what, "table is empty")


def overlay_legend(fig: Figure, draw: dict[str, Any], *, goal_name: str = "goal") -> None:
    """A legend under the figure for the overlay elements that `draw` uses."""
    handles = []
    if draw.get("path"):
        handles.append(
            Line2D([], [], color=CONTROL_COLORS["path"], linewidth=3, alpha=0.6, label="true path")
        )
    if draw.get("model_path"):
        handles.append(
            Line2D(
                [],
                [],
                color=CONTROL_COLORS["highlight"],
                linewidth=1.6,
                linestyle="--",
                label="model path",
            )
        )
    if draw.get("origin") is not None:
        handles.append(Line2D([], [], color="#009E73", marker="o", linestyle="", label="origin"))
    if draw.get(goal_name) is not None:
        face = "none" if goal_name == "goal" else "#CC0000"  # goals are rings, targets dots
        handles.append(
            Line2D(
                [],
                [],
                color="#CC0000",
                marker="o",
                markerfacecolor=face,
                linestyle="",
                label=goal_name,
            )
        )
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
