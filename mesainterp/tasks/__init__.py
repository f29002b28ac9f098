"""Model organisms of search: seeded task generators with labels and counterfactual pairs."""

from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, Metric, Task, TaskBatch
from mesainterp.tasks.graph_search import DagInstance, GraphSearchTask
from mesainterp.tasks.icl_regression import ICLRegressionTask, best_gd_lr, gd_predictions
from mesainterp.tasks.maze import MazeInstance, MazeTask
from mesainterp.tasks.registry import TASKS, get_task, task_from_config
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
    "task_from_config",
]
