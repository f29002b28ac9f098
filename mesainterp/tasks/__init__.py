"""Model organisms of search: seeded task generators with labels and counterfactual pairs.

| name             | class              | defaults                          | d_vocab / out | seq (prompt) |
|------------------|--------------------|-----------------------------------|---------------|--------------|
| "tree-path"      | TreePathTask       | 12 nodes, binary, depth <= 5      | 17 / 17       | 43 (36)      |
| "maze"           | MazeTask           | 4x4 DFS maze                      | 22 / 22       | 67 (50)      |
| "graph-search"   | GraphSearchTask    | 16-vertex DAG, lookahead <= 5     | 22 / 22       | 69 (62)      |
| "icl-regression" | ICLRegressionTask  | d_x 10, 10 pairs, d_model 64      | 64 (width) / 1| 11 (11)      |

Every task: `sample(n, seed=)`, `counterfactual_pairs(n, seed=, family=)`,
`default_metric(pair)`, `score(outputs, batch)`, `config_dict()`; build one by
name with `get_task(name, **params)` or `task_from_config(config_dict)`.
"""

from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, Metric, Task, TaskBatch
from mesainterp.tasks.decode import greedy_decode, greedy_exact
from mesainterp.tasks.graph_search import DagInstance, GraphSearchTask
from mesainterp.tasks.icl_regression import ICLRegressionTask, best_gd_lr, gd_predictions
from mesainterp.tasks.maze import MazeInstance, MazeTask
from mesainterp.tasks.registry import TASKS, get_task, task_from_config
from mesainterp.tasks.roles import task_roles
from mesainterp.tasks.tree_path import TreeInstance, TreePathTask

__all__ = [
    "IGNORE_INDEX",
    "TASKS",
    "CounterfactualPair",
    "DagInstance",
    "GraphSearchTask",
    "ICLRegressionTask",
    "MazeInstance",
    "MazeTask",
    "Metric",
    "Task",
    "TaskBatch",
    "TreeInstance",
    "TreePathTask",
    "best_gd_lr",
    "gd_predictions",
    "get_task",
    "greedy_decode",
    "greedy_exact",
    "task_from_config",
    "task_roles",
]
