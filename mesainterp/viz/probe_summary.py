"""The probe run's one-page summary figure: the layer × position grid, the best
position per layer with its controls, and goal retargeting when it was measured."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["probe_summary_mpl"]


def probe_summary_mpl(table: pd.DataFrame, causal: pd.DataFrame | None = None) -> Any:
    """A matplotlib Figure of a probe table (and its retargeting table, if any)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if causal is not None and len(causal) else 2)
    grid = table.pivot_table(index="layer", columns="pos", values="value")
    metric = str(table["metric"].iloc[0])
    im = axes[0].imshow(grid.to_numpy(), aspect="auto", origin="lower", cmap="viridis")
    axes[0].set_yticks(range(len(grid.index)), [str(v) for v in grid.index])
    step = max(1, len(grid.columns) // 12)
    axes[0].set_xticks(range(0, len(grid.columns), step), [str(v) for v in grid.columns[::step]])
    axes[0].set_xlabel("position")
    axes[0].set_ylabel("layer")
    axes[0].set_title(f"{table['target'].iloc[0]}: held-out {metric}")
    fig.colorbar(im, ax=axes[0])
    best = table.loc[table.groupby("layer")["value"].idxmax()].sort_values("layer")
    ax = axes[1]
    ax.errorbar(
        best["layer"], best["value"], yerr=1.96 * best["se"], marker="o", label="probe (best pos)"
    )
    for col, style in (("random_init", "--"), ("shuffled", ":"), ("majority", "-.")):
        ax.plot(best["layer"], best[col], style, label=col.replace("_", "-"))
    ax.set_xlabel("layer")
    ax.set_ylabel(metric)
    ax.set_title("best position per layer, with controls")
    ax.legend(frameon=False, fontsize=7)
    if causal is not None and len(causal):
        ax = axes[2]
        rows = causal[(causal["metric"] == "to_b") & (causal["intervention"] == "steer")]
        for direction, style in (("probe", "-o"), ("random", "--s")):
            r = rows[rows["direction"] == direction].sort_values("layer")
            err = [r["value"] - r["ci_low"], r["ci_high"] - r["value"]]
            ax.errorbar(r["layer"], r["value"], yerr=err, fmt=style, label=f"steer {direction}")
        base = causal[(causal["intervention"] == "none") & (causal["metric"] == "to_b")]
        ax.plot(base["layer"], base["value"], ":", label="no edit")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("layer")
        ax.set_ylabel("fraction decoding goal B's path")
        ax.set_title("goal retargeting")
        ax.legend(frameon=False, fontsize=7)
    return fig
