"""Task overlays: trees, mazes, ICL regression; layout and drawing checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.viz import (
    attention_to_nodes,
    icl_regression_figure,
    maze_before_after,
    maze_figure,
    maze_small_multiples,
    tree_before_after,
    tree_figure,
    tree_small_multiples,
)
from mesainterp.viz.maze import _walls, connection_grid
from mesainterp.viz.tree import tree_layout

EDGES = [(5, 3), (5, 7), (3, 1), (3, 9), (7, 2), (1, 4)]
DEPTH = {5: 0, 3: 1, 7: 1, 1: 2, 9: 2, 2: 2, 4: 3}


def test_tree_layout_is_layered_by_depth_with_parents_over_children():
    pos = tree_layout(EDGES, root=5)
    for node, depth in DEPTH.items():
        assert pos[node][1] == pytest.approx(-depth / 3)
    for parent in (5, 3):
        children = [c for p, c in EDGES if p == parent]
        assert pos[parent][0] == pytest.approx(np.mean([pos[c][0] for c in children]))


def test_dag_layout_layers_by_longest_path():
    dag = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (0, 4)]
    pos = tree_layout(dag)
    assert pos[3][1] == pytest.approx(-2 / 3) and pos[4][1] == pytest.approx(-1.0)
    with pytest.raises(ConfigError, match="root"):
        tree_layout(EDGES, root=99)


def test_tree_figures_draw_paths_goal_and_intensity():
    fig = tree_figure(
        EDGES, root=5, goal=4, path=[5, 3, 1, 4], model_path=[5, 3, 9], intensity={4: 0.9, 1: 0.3}
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = ax.collections[:3]  # edges, true path, model path
    assert [len(c.get_segments()) for c in lines] == [len(EDGES), 3, 2]
    assert len(fig.axes) == 2  # the tree and its colour bar
    with pytest.raises(ConfigError, match="path nodes"):
        tree_figure(EDGES, path=[5, 42])
    with pytest.raises(ConfigError, match="goal"):
        tree_figure(EDGES, goal=42)


def test_tree_small_multiples_and_before_after():
    panels = {f"L{i}": {4: 0.2 * i, 9: 0.1} for i in range(5)}
    fig = tree_small_multiples(EDGES, panels, root=5, goal=4, ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == list(panels)
    both = tree_before_after(
        EDGES,
        root=5,
        before={"goal": 4, "model_path": [5, 3, 1, 4]},
        after={"goal": 2, "model_path": [5, 7, 2]},
    )
    assert [ax.get_title() for ax in both.axes] == ["before", "after"]


def test_attention_to_nodes_sums_over_positions_of_each_node():
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert attention_to_nodes(weights, [5, None, 3, 5]) == pytest.approx({5: 0.5, 3: 0.3})
    with pytest.raises(ConfigError, match="one entry per key position"):
        attention_to_nodes(weights, [5, 3])


def _maze() -> np.ndarray:
    grid = np.zeros((2, 3, 3), dtype=bool)
    grid[1, 0, 0] = grid[1, 0, 1] = grid[0, 0, 2] = grid[0, 1, 2] = True  # a snake along the edge
    grid[1, 2, 1] = grid[1, 2, 0] = grid[0, 1, 0] = grid[0, 0, 0] = True
    return grid


def test_maze_walls_are_exactly_the_closed_adjacencies():
    grid = _maze()
    interior = 2 * 3 * 2  # 3x3 lattice: 6 vertical + 6 horizontal adjacencies
    assert len(_walls(grid)) == 4 + interior - int(grid.sum())
    passages = [((0, 0), (0, 1)), ((0, 1), (0, 2)), ((0, 2), (1, 2)), ((1, 2), (2, 2))]
    passages += [((2, 1), (2, 2)), ((2, 0), (2, 1)), ((1, 0), (2, 0)), ((0, 0), (1, 0))]
    assert np.array_equal(connection_grid(passages, (3, 3)), grid)
    with pytest.raises(ConfigError, match="adjacent"):
        connection_grid([((0, 0), (2, 2))], (3, 3))


def test_maze_figures():
    grid = _maze()
    fig = maze_figure(
        grid,
        origin=(0, 0),
        target=(2, 2),
        path=[(0, 0), (0, 1), (0, 2), (1, 2), (2, 2)],
        model_path=[(0, 0), (1, 0)],
        intensity=np.eye(3),
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    with pytest.raises(ConfigError, match="outside"):
        maze_figure(grid, path=[(0, 0), (3, 0)])
    with pytest.raises(ConfigError, match="shape"):
        maze_figure(grid, intensity=np.eye(2))
    panels = {f"L{i}": {(2, 2): 0.1 * i} for i in range(3)}
    assert len([a for a in maze_small_multiples(grid, panels).axes if a.get_title()]) == 3
    both = maze_before_after(grid, before={"target": (2, 2)}, after={"target": (2, 0)})
    assert [a.get_title() for a in both.axes] == ["before", "after"]


def test_icl_regression_figure_one_and_many_dimensions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=8)
    q = np.linspace(-1, 1, 4)
    fig = icl_regression_figure(
        x, 2 * x, q, {"model": 1.9 * q, "least squares": 2 * q, "one GD step": q}
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["context", "model", "least squares", "one GD step"]
    xs = torch.randn(8, 3)
    qs = torch.randn(5, 3)
    many = icl_regression_figure(xs, xs.sum(-1), qs, {"model": qs.sum(-1)}, query_y=qs.sum(-1))
    assert many.axes[0].get_xlabel() == "query target"
    with pytest.raises(ConfigError, match="query points"):
        icl_regression_figure(x, x, q, {"model": q[:2]})
