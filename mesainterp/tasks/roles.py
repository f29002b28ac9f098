"""Token roles of a task's examples: one position per example for each named role.

Per-role circuits (`positions=` of EAP, EAP-IG, ACDC and faithfulness) group each
example's positions by what they hold, so examples whose goal or edges sit at
different positions still share one node "L1H0@goal". Every task has

    "answer step k"   the position that predicts the k-th answer token (k = 0 first),
                      prompt_len - 1 + k, for every k up to the end of the sequence

and tree-path adds

    "goal"            the goal token
    "goal edge parent", "goal edge child"   the two node tokens of the edge into the
                      goal (the edge list is shuffled, so these move between examples)

Roles are read from the clean batch: a counterfactual pair keeps the tree and its edge
order, and its corrupted goal's edge sits elsewhere (a position the clean roles name
"other" or "goal edge ..." as the clean example has it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mesainterp.tasks.base import Task, TaskBatch
from mesainterp.tasks.tree_path import TreePathTask

__all__ = ["task_roles"]


def task_roles(task: Task, batch: TaskBatch) -> dict[str, Tensor]:
    """{role: long [batch] position} for `batch` (see the module docstring).

    >>> task = mesainterp.tasks.TreePathTask(n_nodes=5, max_depth=2)
    >>> roles = task_roles(task, task.sample(2, seed=0))
    >>> list(roles)[:4]
    ['goal', 'goal edge parent', 'goal edge child', 'answer step 0']
    >>> roles["goal"].tolist(), roles["answer step 0"].tolist()
    ([13, 13], [14, 14])
    """
    n, p0 = batch.batch_size, batch.prompt_len
    roles: dict[str, Tensor] = {}
    if isinstance(task, TreePathTask):
        goal = batch.labels["goal"]
        rows = torch.arange(n)
        parent_pos = batch.labels["edge_pos"][rows, goal]
        roles["goal"] = torch.full((n,), task.goal_pos, dtype=torch.long)
        roles["goal edge parent"] = parent_pos.long()
        roles["goal edge child"] = parent_pos.long() + 1
    for k in range(batch.seq_len - p0 + 1):
        roles[f"answer step {k}"] = torch.full((n,), p0 - 1 + k, dtype=torch.long)
    return roles
