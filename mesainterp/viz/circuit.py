"""Circuit graphs: nodes laid out by layer, edge width by score.

Input is plain lists: `nodes` (names, or mappings / objects with `name` and
`layer`), `edges` (pairs of node names, or mappings with `source`/`target`) and
`scores` (one per edge). A node given as a bare name gets its layer from the
name ("L3H1", "blocks.3...", "a3.h1", "m3"); "embed"/"input" go first and
"logits"/"output" last.

A circuit found per position or role names its nodes "L1H0@3" / "L1H0@goal" (or, in
its JSON, gives nodes and edges a "position"): nodes are then stacked within each
layer column by position, first to last, and labelled "L1H0 @goal", so the figure
shows where in the prompt each component acts. An edge into a head's key or value at
position p ends at "L1H0@p"; the head reads it from every later position q, so a
dashed link joins L1H0@p to each L1H0@q (q > p) that has an outgoing edge: the move
across positions that attention makes inside the head.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from mesainterp.errors import ConfigError
from mesainterp.viz._style import (
    CONTROL_COLORS,
    Backend,
    check_backend,
    new_figure,
    publication_style,
)

__all__ = ["CircuitLayout", "circuit_graph", "circuit_layout"]

_LAYER = re.compile(r"(?:^|[^a-z])(?:l|blocks\.|a|m|layer)(\d+)", re.IGNORECASE)
_FIRST = ("embed", "pos_embed", "input", "hook_embed", "tokens")
_LAST = ("logits", "output", "unembed", "ln_final")


@dataclass(frozen=True, kw_only=True)
class CircuitLayout:
    """Positions (x = layer rank, y = slot within the layer) and normalised edge widths."""

    names: list[str]
    layers: dict[str, float]
    column_labels: list[str]
    positions: dict[str, tuple[float, float]]
    edges: list[tuple[str, str, float]]
    # Text shown on each node: its name, with " @label" for a position or role.
    texts: dict[str, str] = field(default_factory=dict)
    # Per position: a head's key/value input at p to its outputs at q > p (dashed).
    attention: list[tuple[str, str]] = field(default_factory=list)


def _node(node: Any) -> tuple[str, float | None]:
    if isinstance(node, str):
        return node, None
    if isinstance(node, Mapping):
        key = str(node["name"])
        if node.get("position") is not None:  # a positional circuit's JSON node
            key = f"{key}@{node['position']}"
        return key, (None if node.get("layer") is None else float(node["layer"]))
    name = getattr(node, "name", None)
    if name is None:
        raise ConfigError("nodes", f"a node must be a name, a mapping or have .name, got {node!r}")
    layer = getattr(node, "layer", None)
    return str(name), None if layer is None else float(layer)


def _edge(edge: Any) -> tuple[str, str]:
    if isinstance(edge, Mapping):
        if edge.get("position") is not None:  # a positional circuit's JSON edge
            where = f"@{edge['position']}"
            return f"{edge['source']}{where}", f"{edge['target']}{where}"
        return str(edge["source"]), str(edge["target"])
    if isinstance(edge, Sequence) and not isinstance(edge, str) and len(edge) >= 2:
        return str(edge[0]), str(edge[1])
    source, target = getattr(edge, "source", None), getattr(edge, "target", None)
    if source is None or target is None:
        raise ConfigError(
            "edges", f"an edge must be (source, target) or have source/target, got {edge!r}"
        )
    return str(source), str(target)


def _at(name: str) -> tuple[str, str | None]:
    node, sep, label = name.partition("@")
    return node, (label if sep else None)


def _position_order(names: list[str]) -> list[str]:
    """Names stably sorted by position label: numerically for positions, else in order
    of first appearance (roles); names without a label keep their place first."""
    labels = [_at(n)[1] for n in names]
    seen: dict[str, int] = {}
    for label in labels:
        if label is not None and label not in seen:
            seen[label] = len(seen)

    def rank(label: str | None) -> tuple[int, float]:
        if label is None:
            return (0, 0.0)
        return (1, float(label)) if label.isdigit() else (2, float(seen[label]))

    return [n for _, n in sorted(enumerate(names), key=lambda x: (rank(labels[x[0]]), x[0]))]


def _guess_layer(name: str, last: float) -> float:
    name = _at(name)[0]
    lowered = name.lower()
    if any(lowered.startswith(p) for p in _FIRST):
        return -1.0
    if any(lowered.startswith(p) for p in _LAST):
        return last
    match = _LAYER.search(name)
    if match is None:
        raise ConfigError(
            "nodes", f"cannot tell the layer of node {name!r}; pass {{'name', 'layer'}}"
        )
    return float(match.group(1))


def circuit_layout(
    nodes: Sequence[Any], edges: Sequence[Any], scores: Sequence[float]
) -> CircuitLayout:
    """Place nodes in columns by layer (networkx multipartite layout)."""
    if len(edges) != len(scores):
        raise ConfigError(
            "scores", f"needs one score per edge: {len(edges)} edges, {len(scores)} scores"
        )
    parsed = [_node(n) for n in nodes]
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise ConfigError("nodes", "node names must be unique")
    known = [layer for _, layer in parsed if layer is not None]
    guessable = [
        n for n, layer in parsed if layer is None and not n.lower().startswith(_LAST + _FIRST)
    ]
    guessed = [_guess_layer(n, 0.0) for n in guessable]
    last = max([*known, *guessed, 0.0]) + 1
    layers = {n: (layer if layer is not None else _guess_layer(n, last)) for n, layer in parsed}
    pairs = [_edge(e) for e in edges]
    for source, target in pairs:
        for end in (source, target):
            if end not in layers:
                raise ConfigError("edges", f"edge end {end!r} is not among the nodes")
    graph = nx.DiGraph()
    ranks = {layer: i for i, layer in enumerate(sorted(set(layers.values())))}
    for n in names:
        graph.add_node(n, rank=ranks[layers[n]])
    raw = nx.multipartite_layout(graph, subset_key="rank", align="vertical", scale=1.0)
    # Use the layer rank itself on x so columns are evenly spaced and readable.
    positions = {n: (float(ranks[layers[n]]), float(raw[n][1])) for n in names}
    if any(_at(n)[1] is not None for n in names):
        # Per position: each column top to bottom in prompt order, not networkx's.
        for layer in ranks:
            column = _position_order([n for n in names if layers[n] == layer])
            ys = np.linspace(1.0, -1.0, len(column)) if len(column) > 1 else [0.0]
            for n, y in zip(column, ys, strict=True):
                positions[n] = (float(ranks[layer]), float(y))
    edge_list = [(s, t, float(score)) for (s, t), score in zip(pairs, scores, strict=True)]
    labels = []
    for layer in sorted(ranks):
        members = [n.lower() for n in names if layers[n] == layer]
        if all(m.startswith(_LAST) for m in members):
            labels.append("output")  # e.g. "logits" (stored at a large layer number)
        elif all(m.startswith(_FIRST) for m in members):
            labels.append("embed")
        else:
            labels.append(_layer_label(layer))
    texts = {n: n if _at(n)[1] is None else f"{_at(n)[0]} @{_at(n)[1]}" for n in names}
    return CircuitLayout(
        names=names, layers=layers, column_labels=labels, positions=positions, edges=edge_list,
        texts=texts, attention=_attention_links(edges, {s for s, _ in pairs}),
    )  # fmt: skip


def _attention_links(edges: Sequence[Any], sources: set[str]) -> list[tuple[str, str]]:
    """(head@p, head@q) for each key/value edge into head at position p (a JSON edge
    with "input" k or v and a numeric "position") and each q > p where head sends."""
    read: set[tuple[str, int]] = set()
    for edge in edges:
        if isinstance(edge, Mapping) and edge.get("input") in ("k", "v"):
            where = str(edge.get("position"))
            if where.isdigit():
                read.add((str(edge["target"]), int(where)))
    links = []
    for head, p in sorted(read):
        for name in sorted(sources):
            node, label = _at(name)
            if node == head and label is not None and label.isdigit() and int(label) > p:
                links.append((f"{head}@{p}", name))
    return links


def _widths(edges: list[tuple[str, str, float]], smallest: float, largest: float) -> list[float]:
    magnitude = np.abs(np.array([s for _, _, s in edges], dtype=float))
    top = magnitude.max() if magnitude.size and magnitude.max() > 0 else 1.0
    return list(smallest + (largest - smallest) * magnitude / top)


def _title(title: str | None, faithfulness: float | None, n_nodes: int, n_edges: int) -> str:
    head = title or "Circuit"
    faith = f", faithfulness {faithfulness:.3f}" if faithfulness is not None else ""
    return f"{head} ({n_nodes} nodes, {n_edges} edges{faith})"


def _layer_label(layer: float) -> str:
    if layer < 0:
        return "embed"
    return f"L{int(layer)}" if float(layer).is_integer() else f"{layer:g}"


@overload
def circuit_graph(
    nodes: Sequence[Any],
    edges: Sequence[Any],
    scores: Sequence[float],
    *,
    faithfulness: float | None = ...,
    title: str | None = ...,
    backend: Literal["plotly"] = ...,
) -> go.Figure: ...
@overload
def circuit_graph(
    nodes: Sequence[Any],
    edges: Sequence[Any],
    scores: Sequence[float],
    *,
    faithfulness: float | None = ...,
    title: str | None = ...,
    backend: Literal["matplotlib"],
) -> Figure: ...
def circuit_graph(
    nodes: Sequence[Any],
    edges: Sequence[Any],
    scores: Sequence[float],
    *,
    faithfulness: float | None = None,
    title: str | None = None,
    backend: Backend = "plotly",
) -> go.Figure | Figure:
    """The circuit by layer: edges blue where the score is positive, orange where
    negative, width ∝ |score|; interactive (plotly) or with arrows (matplotlib)."""
    check_backend(backend)
    layout = circuit_layout(nodes, edges, scores)
    heading = _title(title, faithfulness, len(layout.names), len(layout.edges))
    if backend == "plotly":
        return _circuit_plotly(layout, heading)
    return _circuit_matplotlib(layout, heading)


def _circuit_plotly(layout: CircuitLayout, heading: str) -> go.Figure:
    fig = go.Figure()
    for (s, t, score), width in zip(layout.edges, _widths(layout.edges, 0.5, 8.0), strict=True):
        (x0, y0), (x1, y1) = layout.positions[s], layout.positions[t]
        fig.add_trace(
            go.Scatter(
                x=[x0, x1],
                y=[y0, y1],
                mode="lines",
                line={
                    "width": width,
                    "color": CONTROL_COLORS["value"] if score >= 0 else CONTROL_COLORS["highlight"],
                },
                opacity=0.7,
                hoverinfo="text",
                text=f"{s} → {t}: {score:.4f}",
                showlegend=False,
            )
        )
    for s, t in layout.attention:
        (x0, y0), (x1, y1) = layout.positions[s], layout.positions[t]
        fig.add_trace(
            go.Scatter(
                x=[x0, x1], y=[y0, y1], mode="lines",
                line={"width": 1, "color": "#999999", "dash": "dash"},
                hoverinfo="text", text=f"{s} → {t}: attention inside the head",
                showlegend=False,
            )
        )  # fmt: skip
    xs = [layout.positions[n][0] for n in layout.names]
    ys = [layout.positions[n][1] for n in layout.names]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=[layout.texts.get(n, n) for n in layout.names],
            textposition="top center",
            marker={"size": 14, "color": "white", "line": {"width": 1.5, "color": "#333"}},
            hovertemplate="%{text}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_layout(
        title=heading,
        xaxis={
            "tickvals": list(range(len(layout.column_labels))),
            "ticktext": layout.column_labels,
            "title": "layer",
        },
        yaxis={"visible": False},
        template="simple_white",
    )
    return fig


def _circuit_matplotlib(layout: CircuitLayout, heading: str) -> Figure:
    ranks = layout.column_labels
    with publication_style():
        fig = new_figure(min(7.0, 1.5 + 0.9 * len(ranks)), 3.0)
        ax = fig.add_subplot()
        for (s, t, score), width in zip(layout.edges, _widths(layout.edges, 0.3, 4.0), strict=True):
            color = CONTROL_COLORS["value"] if score >= 0 else CONTROL_COLORS["highlight"]
            ax.add_patch(
                FancyArrowPatch(
                    layout.positions[s],
                    layout.positions[t],
                    arrowstyle="-|>",
                    mutation_scale=6 + width,
                    linewidth=width,
                    color=color,
                    alpha=0.7,
                    shrinkA=7,
                    shrinkB=7,
                    connectionstyle="arc3,rad=0.08",
                )
            )
        for s, t in layout.attention:
            ax.add_patch(
                FancyArrowPatch(
                    layout.positions[s], layout.positions[t], arrowstyle="-|>",
                    mutation_scale=6, linewidth=0.6, linestyle="--", color="#999999",
                    shrinkA=7, shrinkB=7, connectionstyle="arc3,rad=0.3",
                )
            )  # fmt: skip
        for name in layout.names:
            x, y = layout.positions[name]
            ax.scatter(
                [x], [y], s=90, color="white", edgecolors="#333333", linewidths=0.8, zorder=3
            )
            ax.annotate(
                layout.texts.get(name, name),
                (x, y),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=6,
                zorder=4,
            )
        ax.set_xticks(range(len(ranks)), ranks)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlim(-0.5, len(ranks) - 0.5)
        ys = [p[1] for p in layout.positions.values()]
        ax.set_ylim(min(ys) - 0.2, max(ys) + 0.3)
        ax.set_xlabel("layer")
        ax.set_title(heading)
    return fig
