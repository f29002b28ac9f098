"""Circuits read off attribution scores: the top-n edges (or all above a threshold),
then dangling edges removed.

An edge into a node that has no kept outgoing edge cannot reach the logits, so it is
dropped, repeatedly, until every kept edge lies on a path to the logits.
"""

from __future__ import annotations

from mesainterp.attribution.eap import EdgeScores
from mesainterp.attribution.graph import EdgeGraph
from mesainterp.attribution.positions import PositionalEdgeScores, PositionalGraph, split_at
from mesainterp.errors import ConfigError

__all__ = ["drop_dangling", "top_edges"]


def drop_dangling(
    graph: EdgeGraph | PositionalGraph, edges: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """Remove edges whose downstream node feeds nothing that is kept (until none is left).

    A key/value input shared by several query heads (grouped-query attention) stays
    while any of those heads has a kept outgoing edge; at one position, while its head
    has a kept outgoing edge at any position that reads it (`PositionalGraph.owners`)."""
    kept = dict(edges)
    while True:
        sources = {u for u, _ in kept}
        dangling = [
            (u, d)
            for (u, d) in kept
            if split_at(d)[0] != "logits" and not sources.intersection(graph.owners(d))
        ]
        if not dangling:
            return kept
        for edge in dangling:
            del kept[edge]


def top_edges(
    scores: EdgeScores | PositionalEdgeScores,
    *,
    top_n: int | None = None,
    threshold: float | None = None,
    prune_dangling: bool = True,
) -> dict[tuple[str, str], float]:
    """The `top_n` edges by |score| (or every edge with |score| >= threshold).

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
    ...     metric=pairs.default_metric(), batch=pair.clean)
    >>> scores = mesainterp.edge_attribution(model, **inputs)
    >>> {edge: round(score, 2) for edge, score in mesainterp.top_edges(scores, top_n=3).items()}
    {('M0', 'logits'): 0.33, ('L0H0', 'M0.in'): 0.31, ('embed', 'L0H0.k'): 0.15}
    >>> len(mesainterp.top_edges(scores, threshold=0.05)), len(scores.ranked())
    (6, 21)
    """
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
