"""Circuits read off attribution scores: the top-n edges (or all above a threshold),
then dangling edges removed.

An edge into a node that has no kept outgoing edge cannot reach the logits, so it is
dropped, repeatedly, until every kept edge lies on a path to the logits.
"""

from __future__ import annotations

from mesainterp.attribution.eap import EdgeScores
from mesainterp.attribution.graph import EdgeGraph
from mesainterp.errors import ConfigError

__all__ = ["drop_dangling", "top_edges"]


def drop_dangling(
    graph: EdgeGraph, edges: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """Remove edges whose downstream node feeds nothing that is kept (until none is left).

    A key/value input shared by several query heads (grouped-query attention) stays
    while any of those heads has a kept outgoing edge."""
    kept = dict(edges)
    while True:
        sources = {u for u, _ in kept}
        dangling = [
            (u, d) for (u, d) in kept if d != "logits" and not sources.intersection(graph.owners(d))
        ]
        if not dangling:
            return kept
        for edge in dangling:
            del kept[edge]


def top_edges(
    scores: EdgeScores,
    *,
    top_n: int | None = None,
    threshold: float | None = None,
    prune_dangling: bool = True,
) -> dict[tuple[str, str], float]:
    """The `top_n` edges by |score| (or every edge with |score| >= threshold)."""
    if (top_n is None) == (threshold is None):
        raise ConfigError("top_n", "give exactly one of top_n and threshold")
    ranked = scores.ranked()
    if top_n is not None:
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
            raise ConfigError("top_n", f"expected an int >= 1, got {top_n!r}")
        chosen = dict(ranked[:top_n])
    else:
        assert threshold is not None
        chosen = {e: s for e, s in ranked if abs(s) >= threshold}
    return drop_dangling(scores.graph, chosen) if prune_dangling else chosen
