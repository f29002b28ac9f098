"""The structural-probe staircase: decoded accuracy by layer, one line per chain rank.

Input is `mesainterp.mechanism.structural.StructuralTable` (or its `to_frame()`).
At one position, each panel draws one quantity's score by layer with its 95%
interval; the chain quantities (ancestor k / node k back) share one panel, one
line per rank k, so a layer-by-layer staircase (rank k rising one layer after
rank k-1) or its absence is visible. Behind each line, a band in its colour runs
from the best control's score to the highest control upper bound at that layer
(random-init twins, shuffled labels); the dotted line is the search-free
baseline. Free quantities say so in their panel title. `backend="plotly"`
(interactive) or `"matplotlib"` (static).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from mesainterp.errors import ConfigError, allowed
from mesainterp.viz._style import (
    Backend,
    check_backend,
    new_figure,
    publication_style,
    require_columns,
)

__all__ = ["STAIRCASE_COLUMNS", "staircase_figure", "staircase_panels"]

STAIRCASE_COLUMNS = (
    "quantity", "rank", "metric", "free", "layer", "pos", "role", "value", "ci_low", "ci_high",
    "chance", "control", "control_high", "baseline", "clears",
)  # fmt: skip
CHAIN_PANEL = "chain"
# Okabe–Ito, colour-blind safe; rank k takes the k-th.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _frame(table: Any) -> pd.DataFrame:
    frame = table.to_frame() if hasattr(table, "to_frame") else table
    require_columns(frame, STAIRCASE_COLUMNS, what="table")
    return frame


def _default_pos(frame: pd.DataFrame) -> int:
    """The position where the chain clears at most (layer, rank) cells; lowest on ties."""
    chain = frame[frame["rank"].notna()]
    rows = chain if not chain.empty else frame
    counts = rows.groupby("pos")["clears"].sum()
    return int(counts[counts == counts.max()].index.min())


def staircase_panels(
    table: Any, *, pos: int | None = None, quantities: Sequence[str] | None = None
) -> tuple[int, str, list[tuple[str, list[tuple[str, pd.DataFrame]]]]]:
    """(pos, role, [(panel title, [(line name, rows by layer)])]) of the figure."""
    frame = _frame(table)
    positions = sorted(int(p) for p in frame["pos"].unique())
    pos = _default_pos(frame) if pos is None else pos
    if pos not in positions:
        raise ConfigError("pos", f"no rows at position {pos}", allowed(positions))
    rows = frame[frame["pos"] == pos]
    names = list(dict.fromkeys(str(q) for q in rows["quantity"]))
    if quantities is not None:
        unknown = [q for q in quantities if q not in names]
        if unknown:
            raise ConfigError(
                "quantities", f"no rows for {unknown[0]!r} at pos {pos}", allowed(names)
            )
        names = [q for q in names if q in quantities]
    chain = [q for q in names if rows.loc[rows["quantity"] == q, "rank"].notna().any()]
    panels: list[tuple[str, list[tuple[str, pd.DataFrame]]]] = []
    if chain:
        lines = [(q, rows[rows["quantity"] == q].sort_values("layer")) for q in chain]
        lines.sort(key=lambda line: float(line[1]["rank"].iloc[0]))
        panels.append((_chain_title(chain), lines))
    for q in names:
        if q in chain:
            continue
        group = rows[rows["quantity"] == q].sort_values("layer")
        free = str(group["free"].iloc[0])
        panels.append((f"{q} (free: {free})" if free else q, [(q, group)]))
    return pos, str(rows["role"].iloc[0]), panels


def _chain_title(chain: list[str]) -> str:
    stem = chain[0].rsplit(" ", 1)[0] if chain[0][-1].isdigit() else chain[0]
    return f"{stem} k, k = 1..{len(chain)}" if stem != chain[0] else CHAIN_PANEL


@overload
def staircase_figure(
    table: Any, *, pos: int | None = ..., quantities: Sequence[str] | None = ...,
    title: str | None = ..., backend: Literal["plotly"] = ...,
) -> go.Figure: ...  # fmt: skip
@overload
def staircase_figure(
    table: Any, *, pos: int | None = ..., quantities: Sequence[str] | None = ...,
    title: str | None = ..., backend: Literal["matplotlib"],
) -> Figure: ...  # fmt: skip
def staircase_figure(
    table: Any,
    *,
    pos: int | None = None,
    quantities: Sequence[str] | None = None,
    title: str | None = None,
    backend: Backend = "plotly",
) -> go.Figure | Figure:
    """Score by layer at `pos` (default: where the chain clears most), one panel per
    quantity, the chain ranks in one panel (see the module docstring)."""
    check_backend(backend)
    pos, role, panels = staircase_panels(table, pos=pos, quantities=quantities)
    heading = title or f"Structural probes at position {pos} ({role}) by layer"
    if backend == "plotly":
        return _plotly(panels, heading)
    return _matplotlib(panels, heading)


def _arrays(group: pd.DataFrame) -> dict[str, np.ndarray]:
    cols = ("layer", "value", "ci_low", "ci_high", "control", "control_high", "baseline")
    return {c: group[c].to_numpy(float) for c in cols}


def _plotly(panels: list[tuple[str, list[tuple[str, pd.DataFrame]]]], heading: str) -> go.Figure:
    n = len(panels)
    cols = min(n, 3)
    n_rows = -(-n // cols)
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=[t for t, _ in panels])
    for i, (_, lines) in enumerate(panels):
        cell = {"row": i // cols + 1, "col": i % cols + 1}
        for j, (name, group) in enumerate(lines):
            a, color = _arrays(group), COLORS[j % len(COLORS)]
            band_x = np.concatenate([a["layer"], a["layer"][::-1]])
            band_y = np.concatenate([a["control_high"], a["control"][::-1]])
            fig.add_trace(
                go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=color, opacity=0.18,
                           line={"width": 0}, name=f"{name}: controls", hoverinfo="skip",
                           legendgroup=name, showlegend=False),
                **cell,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(x=a["layer"], y=a["baseline"], mode="lines", name=f"{name}: baseline",
                           line={"dash": "dot", "color": color, "width": 1}, legendgroup=name,
                           showlegend=False),
                **cell,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=a["layer"], y=a["value"], mode="lines+markers", name=name,
                    legendgroup=name, line={"color": color},
                    error_y={"type": "data", "symmetric": False,
                             "array": a["ci_high"] - a["value"],
                             "arrayminus": a["value"] - a["ci_low"], "thickness": 1},
                    hovertemplate=f"{name}<br>layer %{{x}}<br>%{{y:.3f}}<extra></extra>",
                ),
                **cell,
            )  # fmt: skip
        fig.update_yaxes(title_text=str(lines[0][1]["metric"].iloc[0]), **cell)
    fig.update_xaxes(title_text="layer (resid_post)", dtick=1)
    fig.update_layout(title=heading, template="simple_white", height=140 + 280 * n_rows)
    return fig


def _matplotlib(panels: list[tuple[str, list[tuple[str, pd.DataFrame]]]], heading: str) -> Figure:
    n = len(panels)
    cols = min(n, 3)
    n_rows = -(-n // cols)
    with publication_style():
        fig = new_figure(0.6 + 2.6 * cols, 0.8 + 2.0 * n_rows)
        axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
        for ax, (panel, lines) in zip(axes, panels, strict=False):
            for j, (name, group) in enumerate(lines):
                a, color = _arrays(group), COLORS[j % len(COLORS)]
                ax.fill_between(
                    a["layer"], a["control"], a["control_high"], color=color, alpha=0.18
                )
                ax.plot(a["layer"], a["baseline"], linestyle=":", linewidth=0.8, color=color)
                ax.errorbar(a["layer"], a["value"],
                            yerr=[a["value"] - a["ci_low"], a["ci_high"] - a["value"]],
                            marker="o", markersize=3, color=color, label=name, capsize=0)  # fmt: skip
            ax.set_title(panel)
            ax.set_xlabel("layer (resid_post)")
            ax.set_ylabel(str(lines[0][1]["metric"].iloc[0]))
            if len(lines) > 1:
                ax.legend(frameon=False)
        for ax in axes[n:]:
            ax.set_visible(False)
        fig.suptitle(heading)
    return fig
