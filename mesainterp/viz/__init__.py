"""Figures: they draw what they are given and return objects.

Every function returns a plotly `Figure`, a matplotlib `Figure` (built without
pyplot, so no global state or theme is touched) or a `CircuitsVisHTML`; none
displays or saves anything. `mesainterp.viz.export` turns figures into SVG,
PNG or files when the caller asks.

Each data figure has one builder with `backend="plotly"` (interactive, the
default) or `backend="matplotlib"` (static, for papers): `patching_heatmap`,
`probe_curves`, `probe_heatmap`, `attribution_scatter`, `circuit_graph`.
"""

from mesainterp.viz._style import Backend
from mesainterp.viz.attention import CircuitsVisHTML, attention_heads
from mesainterp.viz.circuit import circuit_graph
from mesainterp.viz.export import plotly_fragment, save_static, to_png, to_svg
from mesainterp.viz.icl import icl_predictions_figure, icl_regression_figure
from mesainterp.viz.instances import (
    instance_before_after,
    instance_figure,
    instance_small_multiples,
    maze_kwargs,
    tree_kwargs,
)
from mesainterp.viz.maze import draw_maze, maze_before_after, maze_figure, maze_small_multiples
from mesainterp.viz.patching import patching_heatmap
from mesainterp.viz.probes import probe_curves, probe_heatmap
from mesainterp.viz.scatter import align_sites, attribution_scatter
from mesainterp.viz.tree import (
    attention_to_nodes,
    draw_tree,
    tree_before_after,
    tree_figure,
    tree_small_multiples,
)

__all__ = [
    "Backend",
    "CircuitsVisHTML",
    "align_sites",
    "attention_heads",
    "attention_to_nodes",
    "attribution_scatter",
    "circuit_graph",
    "draw_maze",
    "draw_tree",
    "icl_predictions_figure",
    "icl_regression_figure",
    "instance_before_after",
    "instance_figure",
    "instance_small_multiples",
    "maze_before_after",
    "maze_figure",
    "maze_kwargs",
    "maze_small_multiples",
    "patching_heatmap",
    "plotly_fragment",
    "probe_curves",
    "probe_heatmap",
    "save_static",
    "to_png",
    "to_svg",
    "tree_before_after",
    "tree_figure",
    "tree_kwargs",
    "tree_small_multiples",
]
