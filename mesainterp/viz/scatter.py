"""Attribution vs exact patching: one point per site, with Pearson and Spearman r.

Both axes must be on one scale. A patching table's `value` is the normalised
effect (0 = corrupted, 1 = clean); raw attribution scores estimate patched -
corrupted, so `align_sites(..., gap=(clean_mean, corrupted_mean))` puts them
through the same `mesainterp.stats.normalise_by_gap` the patching table used.
The correlations are descriptive statistics of the two given columns, computed
here only to print them in the title.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias, overload

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.stats import normalise_by_gap, pearson, spearman
from mesainterp.viz._style import (
    CONTROL_COLORS,
    Backend,
    check_backend,
    new_figure,
    publication_style,
    require_columns,
)

__all__ = ["align_sites", "attribution_scatter", "correlations"]

SITE_KEYS = ("kind", "layer", "head", "position")
Values: TypeAlias = Sequence[float] | np.ndarray | pd.Series


def align_sites(
    exact: pd.DataFrame,
    attribution: pd.DataFrame,
    *,
    gap: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Join two patching tables on their site columns: columns exact, attribution, site.

    gap: (clean mean, corrupted mean) of the exact sweep (its provenance's
    `clean_mean` and `corrupted_mean`). Give it when the attribution values are raw
    estimates of patched - corrupted and the exact values are normalised: the
    attribution is then normalised by the same gap, so both axes read 0 = corrupted,
    1 = clean.
    """
    keys = [k for k in SITE_KEYS if k in exact.columns and k in attribution.columns]
    require_columns(exact, [*keys, "value"], what="exact")
    require_columns(attribution, [*keys, "value"], what="attribution")
    left = exact[[*keys, "value"]].rename(columns={"value": "exact"})
    right = attribution[[*keys, "value"]].rename(columns={"value": "attribution"})
    if gap is not None:
        raw = torch.tensor(right["attribution"].to_numpy(float), dtype=torch.float64)
        right["attribution"] = normalise_by_gap(raw, *gap).numpy()
    # Missing keys (no head for a resid site) must match each other, and 3 must match
    # 3.0 after a CSV round trip, so join on normalised strings.
    left["_key"] = _site_keys(left, keys)
    right["_key"] = _site_keys(right, keys)
    merged = left.merge(right[["_key", "attribution"]], on="_key", how="inner")
    if merged.empty:
        raise ConfigError("attribution", "no site appears in both tables")
    merged["site"] = merged["_key"].str.replace("|", " ", regex=False)
    return merged.drop(columns="_key").reset_index(drop=True)


def _key_part(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _site_keys(table: pd.DataFrame, keys: list[str]) -> pd.Series:
    return pd.Series(
        ["|".join(_key_part(v) for v in row) for row in table[keys].itertuples(index=False)],
        index=table.index,
        dtype=object,
    )


def correlations(x: Values, y: Values) -> tuple[float, float]:
    """(Pearson r, Spearman rho) of two equal-length samples; NaN when undefined."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(
            "attribution", f"needs two 1-D samples of one length, got {a.shape} and {b.shape}"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    x, y = torch.from_numpy(a[keep]), torch.from_numpy(b[keep])
    if x.numel() < 2:
        return float("nan"), float("nan")
    return pearson(x, y), spearman(x, y)


def _title(title: str | None, pearson: float, spearman: float, n: int) -> str:
    head = title or "Attribution vs exact patching"
    return f"{head} (Pearson r = {pearson:.3f}, Spearman ρ = {spearman:.3f}, n = {n})"


def _limits(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    both = np.concatenate([a, b])
    both = both[np.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


@overload
def attribution_scatter(
    exact: Values,
    attribution: Values,
    *,
    labels: Sequence[str] | None = ...,
    title: str | None = ...,
    backend: Literal["plotly"] = ...,
) -> go.Figure: ...
@overload
def attribution_scatter(
    exact: Values,
    attribution: Values,
    *,
    labels: Sequence[str] | None = ...,
    title: str | None = ...,
    backend: Literal["matplotlib"],
) -> Figure: ...
def attribution_scatter(
    exact: Values,
    attribution: Values,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    backend: Backend = "plotly",
) -> go.Figure | Figure:
    """Scatter of attribution against exact effects (one scale, see the module
    docstring), with the y = x line; `labels` name the sites on hover (plotly)."""
    check_backend(backend)
    a = np.asarray(exact, dtype=float)
    b = np.asarray(attribution, dtype=float)
    pearson, spearman = correlations(a, b)
    lo, hi = _limits(a, b)
    heading = _title(title, pearson, spearman, int(a.size))
    if backend == "plotly":
        return _scatter_plotly(a, b, lo, hi, labels, heading)
    return _scatter_matplotlib(a, b, lo, hi, heading)


def _scatter_plotly(
    a: np.ndarray, b: np.ndarray, lo: float, hi: float, labels: Sequence[str] | None, heading: str
) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="y = x",
            line={"dash": "dot", "color": "#999"},
        )
    )
    hover = "exact %{x:.4f}<br>attribution %{y:.4f}<extra></extra>"
    fig.add_trace(
        go.Scatter(
            x=a,
            y=b,
            mode="markers",
            name="sites",
            text=list(labels) if labels is not None else None,
            marker={"color": CONTROL_COLORS["value"], "size": 6, "opacity": 0.8},
            hovertemplate=("%{text}<br>" + hover) if labels is not None else hover,
        )
    )
    fig.update_layout(
        title=heading,
        xaxis_title="exact patching effect",
        yaxis_title="attribution estimate",
        template="simple_white",
    )
    return fig


def _scatter_matplotlib(a: np.ndarray, b: np.ndarray, lo: float, hi: float, heading: str) -> Figure:
    with publication_style():
        fig = new_figure(3.4, 3.0)
        ax = fig.add_subplot()
        ax.plot([lo, hi], [lo, hi], linestyle=":", color="#999999", linewidth=0.8)
        ax.scatter(a, b, s=8, color=CONTROL_COLORS["value"], alpha=0.8, linewidths=0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("exact patching effect")
        ax.set_ylabel("attribution estimate")
        ax.set_title(heading.replace(" (", "\n("))
    return fig
