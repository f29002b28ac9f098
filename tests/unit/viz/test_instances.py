"""Real task instances draw through `instance_figure`."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.tasks.graph_search import GraphSearchTask
from mesainterp.tasks.maze import MazeTask
from mesainterp.tasks.tree_path import TreePathTask
from mesainterp.viz import (
    icl_predictions_figure,
    icl_regression_figure,
    instance_before_after,
    instance_figure,
    instance_small_multiples,
    maze_kwargs,
    tree_kwargs,
)
from mesainterp.viz.maze import connection_grid
from mesainterp.viz.tree import tree_layout


def test_tree_path_instance():
    instance = TreePathTask().sample(1, seed=0).instances[0]
    wrong = list(instance.path[:-1])
    fig = instance_figure(instance, model_path=wrong, intensity={instance.goal: 1.0})
    assert isinstance(fig, Figure)
    kwargs = tree_kwargs(instance)
    assert kwargs["root"] == instance.root and kwargs["path"] == list(instance.path)


def test_graph_search_instance():
    instance = GraphSearchTask().sample(1, seed=0).instances[0]
    kwargs = tree_kwargs(instance)
    assert kwargs["root"] == instance.start
    pos = tree_layout(kwargs["edges"], root=instance.start)
    assert all(pos[a][1] > pos[b][1] for a, b in instance.edges)  # every edge points down
    assert isinstance(instance_figure(instance), Figure)


def test_maze_instance_cells_and_walls():
    instance = MazeTask().sample(1, seed=0).instances[0]
    n = instance.grid_n
    kwargs = maze_kwargs(instance)
    grid = connection_grid(kwargs["connections"], kwargs["shape"])
    assert int(grid.sum()) == n * n - 1  # a spanning tree of the lattice
    assert kwargs["origin"] == divmod(instance.origin, n)
    fig = instance_figure(
        instance, model_path=list(instance.path), intensity=np.arange(n * n) / (n * n)
    )
    assert isinstance(fig, Figure)
    with pytest.raises(ConfigError, match="cell values"):
        instance_figure(instance, intensity=[1.0, 2.0])


def test_counterfactual_pairs_side_by_side_and_per_layer_panels():
    tree_pair = TreePathTask().counterfactual_pairs(1, seed=0)
    clean, corrupted = tree_pair.clean.instances[0], tree_pair.corrupted.instances[0]
    fig = instance_before_after(
        clean, corrupted, model_before=list(clean.path), model_after=list(corrupted.path)
    )
    assert [a.get_title() for a in fig.axes] == ["before", "after"]
    panels = {f"L{layer}": {clean.goal: 0.2 * layer, corrupted.goal: 0.1} for layer in range(3)}
    assert len([a for a in instance_small_multiples(clean, panels).axes if a.get_title()]) == 3
    with pytest.raises(ConfigError, match="same graph"):
        instance_before_after(clean, TreePathTask().sample(1, seed=5).instances[0])

    maze_pair = MazeTask().counterfactual_pairs(1, seed=0)
    m_clean, m_corrupted = maze_pair.clean.instances[0], maze_pair.corrupted.instances[0]
    assert isinstance(
        instance_before_after(m_clean, m_corrupted, model_after=list(m_corrupted.path)), Figure
    )
    n = m_clean.grid_n
    grids = {f"L{layer}": np.full(n * n, layer / 3) for layer in range(2)}
    assert len([a for a in instance_small_multiples(m_clean, grids).axes if a.get_title()]) == 2


def test_icl_regression_task_labels_draw():
    from mesainterp.tasks.icl_regression import ICLRegressionTask

    batch = ICLRegressionTask().sample(16, seed=0)
    xs, ys = batch.labels["xs"], batch.labels["ys"]
    predictions = {
        "least squares": batch.labels["lstsq_pred"],
        "one GD step": batch.labels["gd_pred"],
    }
    fig = icl_predictions_figure(ys[:, -1], predictions)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    mse = float(((batch.labels["gd_pred"] - ys[:, -1]) ** 2).mean())
    assert texts[1] == f"one GD step (MSE {mse:.3g})"
    one = icl_regression_figure(
        xs[0, :-1],
        ys[0, :-1],
        xs[0, -1:],
        {k: v[:1] for k, v in predictions.items()},
        query_y=ys[0, -1:],
    )
    assert one.axes[0].get_xlabel() == "query target"
