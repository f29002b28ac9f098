"""Mechanism: what each head does in a task's own terms, and what each layer would say.

- `head_role_table`: attention mass of every head on named relations at named query
  roles, with bootstrap CIs, and an ablation check of every role it assigns.
- `logit_lens`, `fit_tuned_lens`, `compare_lenses`: decode every layer's residual.
- `direct_logit_attribution`: each head's and MLP's direct effect on a logit
  difference, through the final norm with its scale frozen.
- `structural_probes`, `staircase`: the quantities a search needs (the goal's k-th
  ancestor, current node, reachable set, distance) probed at every layer and position
  against random-init twins, shuffled labels and a search-free baseline.
- `mechanism_card`: the above turned into a short list of claims, each with its
  evidence, interval and computed status, and the task's published findings judged
  on them.
"""

from mesainterp.mechanism.builtin import (
    RELATION_TASKS,
    prompt_query_roles,
    prompt_relations,
    task_query_roles,
    task_relations,
)
from mesainterp.mechanism.card import MechanismCard, mechanism_card
from mesainterp.mechanism.claims import MIN_DIRECT, MIN_LENS_ACC, Claim
from mesainterp.mechanism.dla import DirectLogitAttribution, direct_logit_attribution
from mesainterp.mechanism.head_roles import (
    MAX_CHANCE,
    MIN_DROP,
    MIN_MASS,
    RoleRow,
    RoleTable,
    head_role_table,
)
from mesainterp.mechanism.lens import (
    LensComparison,
    TunedLens,
    accumulated_resid,
    compare_lenses,
    fit_tuned_lens,
    kl_to_final,
    logit_lens,
)
from mesainterp.mechanism.literature import Comparison, compare_with_literature
from mesainterp.mechanism.relations import (
    QueryRole,
    Relation,
    prefix,
    previous_token,
    relation_masks,
    same_token,
    self_token,
)
from mesainterp.mechanism.staircase_rule import Staircase, staircase
from mesainterp.mechanism.structural import (
    StructuralTable,
    structural_labels,
    structural_probes,
)

__all__ = [
    "MAX_CHANCE",
    "MIN_DIRECT",
    "MIN_DROP",
    "MIN_LENS_ACC",
    "MIN_MASS",
    "RELATION_TASKS",
    "Claim",
    "Comparison",
    "DirectLogitAttribution",
    "LensComparison",
    "MechanismCard",
    "QueryRole",
    "Relation",
    "RoleRow",
    "RoleTable",
    "Staircase",
    "StructuralTable",
    "TunedLens",
    "accumulated_resid",
    "compare_lenses",
    "compare_with_literature",
    "direct_logit_attribution",
    "fit_tuned_lens",
    "head_role_table",
    "kl_to_final",
    "logit_lens",
    "mechanism_card",
    "prefix",
    "previous_token",
    "prompt_query_roles",
    "prompt_relations",
    "relation_masks",
    "same_token",
    "self_token",
    "staircase",
    "structural_labels",
    "structural_probes",
    "task_query_roles",
    "task_relations",
]
