"""Attribution patching: every node or every edge scored from a few forwards and one backward."""

from mesainterp.attribution.agreement import (
    Agreement,
    attribution_agreement,
    pearson,
    spearman,
    top_k_overlap,
)
from mesainterp.attribution.eap import EDGE_METHODS, EdgeMethod, EdgeScores, edge_attribution
from mesainterp.attribution.edge_forward import EdgeForward, EdgeRun, edge_support_reason
from mesainterp.attribution.graph import EdgeGraph, edge_name, split_edge_name
from mesainterp.attribution.nodes import NodeScores, node_attribution, site_slice_sum
from mesainterp.attribution.positions import (
    PositionalEdgeScores,
    PositionalGraph,
    PositionGroups,
    Positions,
    position_groups,
)

__all__ = [
    "EDGE_METHODS",
    "Agreement",
    "EdgeForward",
    "EdgeGraph",
    "EdgeMethod",
    "EdgeRun",
    "EdgeScores",
    "NodeScores",
    "PositionGroups",
    "PositionalEdgeScores",
    "PositionalGraph",
    "Positions",
    "attribution_agreement",
    "edge_attribution",
    "edge_name",
    "edge_support_reason",
    "node_attribution",
    "pearson",
    "position_groups",
    "site_slice_sum",
    "spearman",
    "split_edge_name",
    "top_k_overlap",
]
