"""Mechanism: what each head does in a task's own terms, and what each layer would say.

- `head_role_table`: attention mass of every head on named relations at named query
  roles, with bootstrap CIs, and an ablation check of every role it assigns.
- `logit_lens`, `fit_tuned_lens`, `compare_lenses`: decode every layer's residual.
- `direct_logit_attribution`: each head's and MLP's direct effect on a logit
  difference, through the final norm with its scale frozen.
"""

from mesainterp.mechanism.head_roles import MIN_DROP, MIN_MASS, RoleRow, RoleTable, head_role_table
from mesainterp.mechanism.relations import (
    QueryRole,
    Relation,
    prefix,
    previous_token,
    relation_masks,
    same_token,
    self_token,
)
from mesainterp.mechanism.task_relations import (
    RELATION_TASKS,
    prompt_query_roles,
    prompt_relations,
    task_query_roles,
    task_relations,
)

__all__ = [
    "MIN_DROP",
    "MIN_MASS",
    "RELATION_TASKS",
    "QueryRole",
    "Relation",
    "RoleRow",
    "RoleTable",
    "head_role_table",
    "prefix",
    "previous_token",
    "prompt_query_roles",
    "prompt_relations",
    "relation_masks",
    "same_token",
    "self_token",
    "task_query_roles",
    "task_relations",
]
