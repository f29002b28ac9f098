"""Task instances to drawing keywords, and one call to draw an instance.

Reads the instance dataclasses of the task modules by their fields, without
importing them: tree-path (edges, root, goal, path), graph-search DAGs (edges,
start, goal, path) and mazes (grid_n, edges between cell indices
`row * grid_n + col`, origin, target, path). A model's path and per-node or
per-cell intensities are given in the task's own ids (node labels, cell
indices) and converted here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from einops import rearrange
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.viz.maze import maze_before_after, maze_figure, maze_small_multiples
from mesainterp.viz.tree import tree_before_after, tree_figure, tree_small_multiples

__all__ = [
    "cell",
    "instance_before_after",
    "instance_figure",
    "instance_small_multiples",
    "maze_kwargs",
    "tree_kwargs",
]


def tree_kwargs(instance: Any) -> dict[str, Any]:
    """`draw_tree` keywords of a tree-path or graph-search instance."""
    root = getattr(instance, "root", getattr(instance, "start", None))
    if not hasattr(instance, "edges") or root is None:
        raise ConfigError("instance", f"{type(instance).__name__} has no edges and root/start")
    return {
        "edges": [tuple(e) for e in instance.edges],
        "root": root,
        "goal": getattr(instance, "goal", None),
        "path": list(getattr(instance, "path", ()) or ()) or None,
    }


def cell(index: int, grid_n: int) -> tuple[int, int]:
    """(row, col) of a maze cell index."""
    if not 0 <= int(index) < grid_n * grid_n:
        raise ConfigError("cell", f"index {index} outside a {grid_n}×{grid_n} grid")
    return divmod(int(index), grid_n)


def maze_kwargs(instance: Any) -> dict[str, Any]:
    """`draw_maze` keywords of a maze instance (cell indices → (row, col))."""
    grid_n = getattr(instance, "grid_n", None)
    if grid_n is None:
        raise ConfigError("instance", f"{type(instance).__name__} has no grid_n")
    return {
        "connections": [(cell(a, grid_n), cell(b, grid_n)) for a, b in instance.edges],
        "shape": (grid_n, grid_n),
        "origin": cell(instance.origin, grid_n),
        "target": cell(instance.target, grid_n),
        "path": [cell(c, grid_n) for c in instance.path],
    }


def _cell_intensity(
    values: Mapping[int, float] | Sequence[float] | np.ndarray, grid_n: int
) -> np.ndarray:
    if isinstance(values, Mapping):
        grid = np.zeros((grid_n, grid_n))
        for index, value in values.items():
            grid[cell(index, grid_n)] = float(value)
        return grid
    flat = np.asarray(values, dtype=float).reshape(-1)
    if flat.size != grid_n * grid_n:
        raise ConfigError("intensity", f"needs {grid_n * grid_n} cell values, got {flat.size}")
    return rearrange(flat, "(row col) -> row col", row=grid_n)


def instance_figure(
    instance: Any,
    *,
    model_path: Sequence[int] | None = None,
    intensity: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
    title: str | None = None,
) -> Figure:
    """Draw one task instance with the model's output path and an intensity
    (e.g. a head's attention from the current position) in the task's ids."""
    if hasattr(instance, "grid_n"):
        grid_n = int(instance.grid_n)
        kwargs = maze_kwargs(instance)
        connections = kwargs.pop("connections")
        if model_path is not None:
            kwargs["model_path"] = [cell(c, grid_n) for c in model_path]
        if intensity is not None:
            kwargs["intensity"] = _cell_intensity(intensity, grid_n)
        return maze_figure(connections, title=title, **kwargs)
    kwargs = tree_kwargs(instance)
    edges = kwargs.pop("edges")
    if model_path is not None:
        kwargs["model_path"] = list(model_path)
    if intensity is not None:
        if not isinstance(intensity, Mapping):
            raise ConfigError("intensity", "for graphs, give a mapping node → value")
        kwargs["intensity"] = dict(intensity)
    return tree_figure(edges, title=title, **kwargs)


Intensity = Mapping[int, float] | Sequence[float] | np.ndarray


def instance_small_multiples(
    instance: Any, panels: Mapping[str, Intensity], *, ncols: int = 4, title: str | None = None
) -> Figure:
    """One panel per entry (e.g. the goal decoded by a probe at each layer), in the
    task's ids: node → value for graphs, cell index → value (or a flat array) for mazes."""
    if hasattr(instance, "grid_n"):
        grid_n = int(instance.grid_n)
        kwargs = maze_kwargs(instance)
        connections = kwargs.pop("connections")
        grids = {name: _cell_intensity(values, grid_n) for name, values in panels.items()}
        return maze_small_multiples(connections, grids, ncols=ncols, title=title, **kwargs)
    kwargs = tree_kwargs(instance)
    if not all(isinstance(v, Mapping) for v in panels.values()):
        raise ConfigError("panels", "for graphs, give each panel as a mapping node → value")
    return tree_small_multiples(
        kwargs["edges"],
        {name: dict(values) for name, values in panels.items()},  # type: ignore[arg-type]
        root=kwargs["root"],
        goal=kwargs["goal"],
        ncols=ncols,
        title=title,
    )


def instance_before_after(
    before: Any,
    after: Any,
    *,
    model_before: Sequence[int] | None = None,
    model_after: Sequence[int] | None = None,
    titles: tuple[str, str] = ("before", "after"),
    title: str | None = None,
) -> Figure:
    """Side by side: the clean instance with the model's path, and the intervened-on
    one (e.g. the retargeted goal) with the model's path under the intervention.
    Both instances must share the graph or maze."""
    if hasattr(before, "grid_n"):
        grid_n = int(before.grid_n)
        left, right = maze_kwargs(before), maze_kwargs(after)
        connections = left.pop("connections")
        if sorted(map(sorted, connections)) != sorted(map(sorted, right.pop("connections"))):
            raise ConfigError("after", "before and after must share the same maze")
        shape = left.pop("shape")
        right.pop("shape")
        if model_before is not None:
            left["model_path"] = [cell(c, grid_n) for c in model_before]
        if model_after is not None:
            right["model_path"] = [cell(c, grid_n) for c in model_after]
        return maze_before_after(
            connections, before=left, after=right, shape=shape, titles=titles, title=title
        )
    left, right = tree_kwargs(before), tree_kwargs(after)
    if sorted(left["edges"]) != sorted(right["edges"]):
        raise ConfigError("after", "before and after must share the same graph")
    edges = left.pop("edges")
    right.pop("edges")
    root = left.pop("root")
    right.pop("root")
    if model_before is not None:
        left["model_path"] = list(model_before)
    if model_after is not None:
        right["model_path"] = list(model_after)
    return tree_before_after(edges, before=left, after=right, root=root, titles=titles, title=title)
