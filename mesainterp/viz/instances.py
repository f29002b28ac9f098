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
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.viz.maze import maze_figure
from mesainterp.viz.tree import tree_figure

__all__ = ["cell", "instance_figure", "maze_kwargs", "tree_kwargs"]


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
    return flat.reshape(grid_n, grid_n)


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
