"""Internal-search evidence: a battery of falsifiable tests combined into a scorecard.

goal_representation, goal_retargeting, look_ahead, iterative_computation,
localised_mechanism, algorithmic_match (one module each) → `run_battery` →
`Scorecard` (versioned JSON with provenance) → `rank` across models of one task.
`planted` builds hand-set models whose search circuit is known by construction;
`planted_lookup` one that solves tree-path without iterating (the negative control
of the iterative test).
"""

from mesainterp.evidence.algorithmic import algorithmic_match
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.goal import goal_representation, goal_retargeting
from mesainterp.evidence.iterative import iterative_computation
from mesainterp.evidence.localised import localised_mechanism
from mesainterp.evidence.lookahead import look_ahead
from mesainterp.evidence.planted import (
    planted_chain_config,
    planted_chain_model,
    planted_gd_config,
    planted_gd_model,
)
from mesainterp.evidence.planted_graph import planted_reach_config, planted_reach_model
from mesainterp.evidence.planted_lookup import planted_lookup_config, planted_lookup_model
from mesainterp.evidence.planted_maze import planted_flood_config, planted_flood_model
from mesainterp.evidence.profile import EvidenceInputs, TaskProfile, collect_inputs, profile_for
from mesainterp.evidence.result import EvidenceResult, Verdict
from mesainterp.evidence.scorecard import (
    BATTERY_VERSION,
    SCORECARD_FORMAT,
    SCORECARD_SCHEMA_VERSION,
    TESTS,
    Scorecard,
    rank,
    run_battery,
    twin_controls,
)

__all__ = [
    "BATTERY_VERSION",
    "SCORECARD_FORMAT",
    "SCORECARD_SCHEMA_VERSION",
    "TESTS",
    "EvidenceConfig",
    "EvidenceInputs",
    "EvidenceResult",
    "Scorecard",
    "TaskProfile",
    "Verdict",
    "algorithmic_match",
    "collect_inputs",
    "goal_representation",
    "goal_retargeting",
    "iterative_computation",
    "localised_mechanism",
    "look_ahead",
    "planted_chain_config",
    "planted_chain_model",
    "planted_flood_config",
    "planted_flood_model",
    "planted_gd_config",
    "planted_gd_model",
    "planted_lookup_config",
    "planted_lookup_model",
    "planted_reach_config",
    "planted_reach_model",
    "profile_for",
    "rank",
    "run_battery",
    "twin_controls",
]
