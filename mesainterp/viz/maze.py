"""Lattice mazes drawn as a grid with walls, paths and per-cell intensities.

`connections` is either maze-dataset's connection list (bool [2, rows, cols]:
[0, r, c] opens (r, c)–(r+1, c), [1, r, c] opens (r, c)–(r, c+1)), an object
with a `connection_list` attribute (a `LatticeMaze`), or a list of open
passages ((r, c), (r', c')) between adjacent cells. A wall is drawn wherever
two adjacent cells are not connected. Cells are (row, col); row 0 is on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.viz._style import CONTROL_COLORS, new_figure, overlay_legend, publication_style

__all__ = [
    "connection_grid",
    "draw_maze",
    "maze_before_after",
    "maze_figure",
    "maze_small_multiples",
]

Cell = tuple[int, int]
INTENSITY_CMAP = "Purples"


def connection_grid(connections: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Normalise any accepted `connections` to a bool array [2, rows, cols]."""
    source = getattr(connections, "connection_list", connections)
    array = np.asarray(source)
    if array.dtype == bool or (array.ndim == 3 and array.shape[0] == 2 and shape is None):
        if array.ndim != 3 or array.shape[0] != 2:
            raise ConfigError(
                "connections", f"a connection list has shape [2, rows, cols], got {array.shape}"
            )
        return array.astype(bool)
    if shape is None:
        raise ConfigError("shape", "needed (rows, cols) when connections is a list of passages")
    grid = np.zeros((2, *shape), dtype=bool)
    for pair in source:
        (r0, c0), (r1, c1) = sorted(
            (tuple(int(v) for v in pair[0]), tuple(int(v) for v in pair[1]))
        )
        if (r1 - r0, c1 - c0) == (1, 0):
            grid[0, r0, c0] = True
        elif (r1 - r0, c1 - c0) == (0, 1):
            grid[1, r0, c0] = True
        else:
            raise ConfigError("connections", f"passage {pair!r} does not join adjacent cells")
    return grid


def _walls(grid: np.ndarray) -> list[list[tuple[float, float]]]:
    rows, cols = grid.shape[1:]
    walls: list[list[tuple[float, float]]] = [
        [(-0.5, -0.5), (cols - 0.5, -0.5)],
        [(-0.5, rows - 0.5), (cols - 0.5, rows - 0.5)],
        [(-0.5, -0.5), (-0.5, rows - 0.5)],
        [(cols - 0.5, -0.5), (cols - 0.5, rows - 0.5)],
    ]
    for r in range(rows):
        for c in range(cols):
            if r + 1 < rows and not grid[0, r, c]:
                walls.append([(c - 0.5, r + 0.5), (c + 0.5, r + 0.5)])
            if c + 1 < cols and not grid[1, r, c]:
                walls.append([(c + 0.5, r - 0.5), (c + 0.5, r + 0.5)])
    return walls


def _xy(path: Sequence[Cell], rows: int, cols: int, what: str) -> np.ndarray:
    points = np.array([[int(c[1]), int(c[0])] for c in path], dtype=float).reshape(-1, 2)
    if points.size and (
        points.min() < 0 or (points[:, 0] >= cols).any() or (points[:, 1] >= rows).any()
    ):
        raise ConfigError(what, f"cells outside the {rows}×{cols} grid")
    return points


def draw_maze(
    ax: Axes,
    connections: Any,
    *,
    shape: tuple[int, int] | None = None,
    origin: Cell | None = None,
    target: Cell | None = None,
    path: Sequence[Cell] | None = None,
    model_path: Sequence[Cell] | None = None,
    intensity: np.ndarray | Mapping[Cell, float] | None = None,
    vmax: float | None = None,
    title: str | None = None,
) -> Axes:
    """Draw walls, cell intensity (array [rows, cols] or mapping cell → value),
    the true path (solid blue), the model's path (dashed orange), origin (green)
    and target (red)."""
    grid = connection_grid(connections, shape)
    rows, cols = grid.shape[1:]
    if intensity is not None:
        if isinstance(intensity, Mapping):
            image = np.zeros((rows, cols))
            for (r, c), v in intensity.items():
                image[int(r), int(c)] = float(v)
        else:
            image = np.asarray(intensity, dtype=float)
            if image.shape != (rows, cols):
                raise ConfigError("intensity", f"needs shape {(rows, cols)}, got {image.shape}")
        top = vmax if vmax is not None else max(float(image.max()), 1e-12)
        ax.imshow(
            image,
            cmap=INTENSITY_CMAP,
            norm=Normalize(0.0, top),
            extent=(-0.5, cols - 0.5, rows - 0.5, -0.5),
            zorder=0,
        )
    ax.add_collection(
        LineCollection(
            _walls(grid), colors="#222222", linewidths=1.4, capstyle="projecting", zorder=2
        )
    )
    if path:
        xy = _xy(path, rows, cols, "path")
        ax.plot(
            xy[:, 0],
            xy[:, 1],
            color=CONTROL_COLORS["path"],
            linewidth=4,
            alpha=0.5,
            solid_capstyle="round",
            zorder=3,
        )
    if model_path:
        xy = _xy(model_path, rows, cols, "model_path")
        ax.plot(
            xy[:, 0],
            xy[:, 1],
            color=CONTROL_COLORS["highlight"],
            linewidth=1.6,
            linestyle="--",
            zorder=4,
        )
    for cell, color, what in ((origin, "#009E73", "origin"), (target, "#CC0000", "target")):
        if cell is not None:
            (x, y) = _xy([cell], rows, cols, what)[0]
            ax.scatter([x], [y], s=60, color=color, zorder=5, edgecolors="white", linewidths=0.6)
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(rows - 0.4, -0.6)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def maze_figure(
    connections: Any, *, title: str | None = None, colorbar: bool = True, **draw: Any
) -> Figure:
    """One maze in a new figure (keywords as in `draw_maze`)."""
    with publication_style():
        fig = new_figure(3.0, 3.0)
        ax = fig.add_subplot()
        draw_maze(ax, connections, title=title, **draw)
        if colorbar and draw.get("intensity") is not None:
            fig.colorbar(ax.images[0], ax=ax, shrink=0.7)
        overlay_legend(fig, draw, goal_name="target")
    return fig


def maze_small_multiples(
    connections: Any,
    panels: Mapping[str, np.ndarray | Mapping[Cell, float]],
    *,
    ncols: int = 4,
    title: str | None = None,
    **draw: Any,
) -> Figure:
    """One small maze per panel (e.g. decoded target per layer), one colour scale."""
    if not panels:
        raise ConfigError("panels", "needs at least one panel")
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    tops = [
        float(np.max(list(v.values()))) if isinstance(v, Mapping) else float(np.max(v))
        for v in panels.values()
    ]
    vmax = max(max(tops), 1e-12)
    with publication_style():
        fig = new_figure(1.7 * ncols + 0.6, 1.8 * nrows + 0.3)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
        for ax, (name, values) in zip(axes, panels.items(), strict=False):
            draw_maze(ax, connections, intensity=values, vmax=vmax, title=name, **draw)
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        fig.colorbar(ScalarMappable(Normalize(0.0, vmax), INTENSITY_CMAP), ax=axes, shrink=0.7)
        if title:
            fig.suptitle(title)
    return fig


def maze_before_after(
    connections: Any,
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    shape: tuple[int, int] | None = None,
    titles: tuple[str, str] = ("before", "after"),
    title: str | None = None,
) -> Figure:
    """Two panels: `before`/`after` are `draw_maze` keywords for the runs without and
    with the intervention (e.g. a retargeted goal)."""
    with publication_style():
        fig = new_figure(6.0, 3.0)
        left, right = fig.subplots(1, 2)
        draw_maze(left, connections, shape=shape, title=titles[0], **dict(before))
        draw_maze(right, connections, shape=shape, title=titles[1], **dict(after))
        overlay_legend(
            fig, {**before, **{k: v for k, v in after.items() if v is not None}}, goal_name="target"
        )
        if title:
            fig.suptitle(title)
    return fig
