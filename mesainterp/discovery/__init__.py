"""Circuit discovery: ACDC-style pruning, top-n circuits, the Circuit value, faithfulness."""

from mesainterp.discovery.ablated import ablated_outputs, cut_run_metric
from mesainterp.discovery.acdc_pruning import AcdcResult, acdc
from mesainterp.discovery.circuit import (
    CIRCUIT_FORMAT,
    CIRCUIT_SCHEMA_VERSION,
    Circuit,
    CircuitFormatError,
)
from mesainterp.discovery.config import SearchConfig, load_config
from mesainterp.discovery.faithfulness_measure import FaithfulnessRow, faithfulness, rows_to_frame
from mesainterp.discovery.greedy import drop_dangling, top_edges
from mesainterp.discovery.planted import PLANTED_EDGES, planted_model, planted_pair
from mesainterp.discovery.planted_saturated import (
    SATURATED_DISTRACTORS,
    SATURATED_NECESSARY,
    saturated_model,
    saturated_pair,
)

__all__ = [
    "CIRCUIT_FORMAT",
    "CIRCUIT_SCHEMA_VERSION",
    "PLANTED_EDGES",
    "SATURATED_DISTRACTORS",
    "SATURATED_NECESSARY",
    "AcdcResult",
    "Circuit",
    "CircuitFormatError",
    "FaithfulnessRow",
    "SearchConfig",
    "ablated_outputs",
    "acdc",
    "cut_run_metric",
    "drop_dangling",
    "faithfulness",
    "load_config",
    "planted_model",
    "planted_pair",
    "rows_to_frame",
    "saturated_model",
    "saturated_pair",
    "top_edges",
]
