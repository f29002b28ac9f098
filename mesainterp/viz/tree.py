"""Trees and DAGs drawn as graphs, with paths, goals and per-node intensities.

Layout is layered by depth (distance from the root for a tree; for a DAG the
longest path from a source, so every edge points down) with networkx's multipartite layout; no graphviz binary is needed. Inputs
are plain: `edges` as (parent, child) pairs, node ids any hashable (ints for the
tree-path task), `intensity` a mapping node → value (attention of a head from
the current position, a probe's decoded probability, ...). Everything is drawn
with the matplotlib object API into an `Axes` the caller owns, or into a new
`Figure` returned to the caller.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
from jaxtyping import Float
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.viz._style import CONTROL_COLORS, new_figure, overlay_legend, publication_style

__all__ = [
    "attention_to_nodes",
    "draw_tree",
    "tree_before_after",
    "tree_figure",
    "tree_layout",
    "tree_small_multiples",
]

Node = Hashable
Edge = tuple[Node, Node]
INTENSITY_CMAP = "Purples"


def tree_layout(
    edges: Sequence[Edge], *, root: Node | None = None
) -> dict[Node, tuple[float, float]]:
    """Positions with depth on -y (root on top), siblings spread along x."""
    if not edges:
        raise ConfigError("edges", "needs at least one (parent, child) edge")
    graph = nx.DiGraph()
    graph.add_edges_from((a, b) for a, b in edges)
    sources = [root] if root is not None else [n for n, d in graph.in_degree() if d == 0]
    if not sources or any(s not in graph for s in sources):
        raise ConfigError(
            "root",
            f"root {root!r} is not a node of the graph"
            if root is not None
            else "the graph has no source node",
        )
    depth = nx.multi_source_dijkstra_path_length(graph, set(sources))
    if len(depth) < len(graph):
        # Part of a DAG the root does not reach: layer by distance from every source.
        sources = list(dict.fromkeys([*sources, *(n for n, d in graph.in_degree() if d == 0)]))
        depth = nx.multi_source_dijkstra_path_length(graph, set(sources))
    unreachable = [n for n in graph if n not in depth]
    if unreachable:
        raise ConfigError("edges", f"nodes {unreachable[:5]} are not reachable from the root")
    tree = len(sources) == 1 and nx.is_arborescence(graph)
    if not tree and nx.is_directed_acyclic_graph(graph):
        # Longest-path layers (topological generations): every edge points down a layer.
        depth = {n: i for i, gen in enumerate(nx.topological_generations(graph)) for n in gen}
    top = max(depth.values()) or 1
    if tree:
        xs = _tidy_x(graph, sources[0])
    else:
        # A DAG: multipartite layout, nodes inserted depth-first so related nodes sit together.
        ordered = nx.DiGraph()
        for source in sources:
            for node in nx.dfs_preorder_nodes(graph, source, sort_neighbors=_sorted):
                if node not in ordered:
                    ordered.add_node(node, depth=depth[node])
        raw = nx.multipartite_layout(ordered, subset_key="depth", align="horizontal", scale=1.0)
        xs = {n: float(raw[n][0]) for n in ordered}
    return {n: (xs[n], -float(depth[n]) / top) for n in xs}


def _tidy_x(tree: nx.DiGraph, root: Node) -> dict[Node, float]:
    """Leaves evenly spaced in depth-first order, parents centred over their children."""
    xs: dict[Node, float] = {}
    leaves = [
        n
        for n in nx.dfs_preorder_nodes(tree, root, sort_neighbors=_sorted)
        if tree.out_degree(n) == 0
    ]
    span = max(len(leaves) - 1, 1)
    for i, leaf in enumerate(leaves):
        xs[leaf] = 2.0 * i / span - 1.0
    for node in reversed(list(nx.dfs_preorder_nodes(tree, root, sort_neighbors=_sorted))):
        if node not in xs:
            xs[node] = float(np.mean([xs[c] for c in tree.successors(node)]))
    return xs


def _sorted(nodes: Any) -> list[Node]:
    items = list(nodes)
    try:
        return sorted(items)
    except TypeError:
        return items


def attention_to_nodes(
    weights: Float[Tensor, " key"] | Sequence[float] | np.ndarray,
    position_nodes: Sequence[Node | None],
) -> dict[Node, float]:
    """Sum attention weights over the key positions that name each node.

    `position_nodes[k]` is the node token at key position k (None for others).
    """
    values = (
        weights.detach().float().cpu().numpy()
        if isinstance(weights, Tensor)
        else np.asarray(weights, dtype=float)
    )
    if values.ndim != 1 or len(values) != len(position_nodes):
        raise ConfigError(
            "position_nodes",
            f"needs one entry per key position: {len(position_nodes)} entries, weights shape {values.shape}",
        )
    total: dict[Node, float] = {}
    for node, weight in zip(position_nodes, values, strict=True):
        if node is not None:
            total[node] = total.get(node, 0.0) + float(weight)
    return total


def _path_segments(
    path: Sequence[Node] | None, pos: Mapping[Node, tuple[float, float]]
) -> list[list[tuple[float, float]]]:
    if not path:
        return []
    missing = [n for n in path if n not in pos]
    if missing:
        raise ConfigError("path", f"path nodes {missing[:5]} are not in the graph")
    return [[pos[a], pos[b]] for a, b in itertools.pairwise(path)]


def draw_tree(
    ax: Axes,
    edges: Sequence[Edge],
    *,
    root: Node | None = None,
    goal: Node | None = None,
    path: Sequence[Node] | None = None,
    model_path: Sequence[Node] | None = None,
    intensity: Mapping[Node, float] | None = None,
    vmax: float | None = None,
    labels: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw the graph into `ax`: true path solid blue, model's path dashed orange,
    goal ringed red, node fill = intensity (0 → white)."""
    pos = tree_layout(edges, root=root)
    ax.add_collection(
        LineCollection(
            [[pos[a], pos[b]] for a, b in edges], colors="#BBBBBB", linewidths=0.8, zorder=1
        )
    )
    if path:
        ax.add_collection(
            LineCollection(
                _path_segments(path, pos),
                colors=CONTROL_COLORS["path"],
                linewidths=3.0,
                alpha=0.6,
                zorder=2,
            )
        )
    if model_path:
        ax.add_collection(
            LineCollection(
                _path_segments(model_path, pos),
                colors=CONTROL_COLORS["highlight"],
                linewidths=1.6,
                linestyles="--",
                zorder=3,
            )
        )
    nodes = list(pos)
    xy = np.array([pos[n] for n in nodes])
    if intensity is not None:
        values = np.array([float(intensity.get(n, 0.0)) for n in nodes])
        top = vmax if vmax is not None else max(float(values.max()), 1e-12)
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=170,
            c=values,
            cmap=INTENSITY_CMAP,
            norm=Normalize(0.0, top),
            edgecolors="#444444",
            linewidths=0.6,
            zorder=4,
        )
    else:
        ax.scatter(
            xy[:, 0], xy[:, 1], s=170, c="white", edgecolors="#444444", linewidths=0.6, zorder=4
        )
    if goal is not None:
        if goal not in pos:
            raise ConfigError("goal", f"goal {goal!r} is not a node of the graph")
        gx, gy = pos[goal]
        ax.scatter(
            [gx], [gy], s=330, facecolors="none", edgecolors="#CC0000", linewidths=1.4, zorder=5
        )
    if root is not None:
        rx, ry = pos[root]
        ax.scatter(
            [rx],
            [ry],
            s=330,
            marker="s",
            facecolors="none",
            edgecolors="#333333",
            linewidths=0.8,
            zorder=5,
        )
    if labels:
        for node, (x, y) in pos.items():
            shade = intensity is not None and float(intensity.get(node, 0.0)) > 0.6 * (
                vmax or max(intensity.values(), default=1) or 1
            )
            ax.text(
                x,
                y,
                str(node),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if shade else "black",
                zorder=6,
            )
    ax.set_xlim(xy[:, 0].min() - 0.15, xy[:, 0].max() + 0.15)
    ax.set_ylim(-1.15, 0.15)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def tree_figure(
    edges: Sequence[Edge], *, title: str | None = None, colorbar: bool = True, **draw: Any
) -> Figure:
    """One tree in a new figure (keywords as in `draw_tree`)."""
    with publication_style():
        fig = new_figure(3.4, 2.6)
        ax = fig.add_subplot()
        draw_tree(ax, edges, title=title, **draw)
        if colorbar and draw.get("intensity") is not None:
            _colorbar(fig, ax, draw["intensity"], draw.get("vmax"))
        overlay_legend(fig, draw)
    return fig


def _colorbar(
    fig: Figure, ax: Axes | list[Axes], intensity: Mapping[Node, float], vmax: float | None
) -> None:
    top = vmax if vmax is not None else max(max(intensity.values(), default=1.0), 1e-12)
    fig.colorbar(ScalarMappable(Normalize(0.0, top), INTENSITY_CMAP), ax=ax, shrink=0.7)


def tree_small_multiples(
    edges: Sequence[Edge],
    panels: Mapping[str, Mapping[Node, float]],
    *,
    root: Node | None = None,
    goal: Node | None = None,
    path: Sequence[Node] | None = None,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """One small tree per panel (e.g. the decoded goal distribution at each layer),
    all on one colour scale."""
    if not panels:
        raise ConfigError("panels", "needs at least one panel")
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    vmax = max((max(v.values(), default=0.0) for v in panels.values()), default=1.0) or 1.0
    with publication_style():
        fig = new_figure(1.8 * ncols + 0.6, 1.6 * nrows + 0.4)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
        for ax, (name, values) in zip(axes, panels.items(), strict=False):
            draw_tree(
                ax, edges, root=root, goal=goal, path=path, intensity=values, vmax=vmax, title=name
            )
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        _colorbar(fig, axes, {"max": vmax}, vmax)
        if title:
            fig.suptitle(title)
    return fig


def tree_before_after(
    edges: Sequence[Edge],
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    root: Node | None = None,
    titles: tuple[str, str] = ("before", "after"),
    title: str | None = None,
) -> Figure:
    """Two panels, same layout: `before` and `after` are `draw_tree` keywords
    (goal, path, model_path, intensity) for the run without and with the intervention."""
    with publication_style():
        fig = new_figure(6.8, 2.6)
        left, right = fig.subplots(1, 2)
        draw_tree(left, edges, root=root, title=titles[0], **dict(before))
        draw_tree(right, edges, root=root, title=titles[1], **dict(after))
        overlay_legend(fig, {**before, **{k: v for k, v in after.items() if v is not None}})
        if title:
            fig.suptitle(title)
    return fig
