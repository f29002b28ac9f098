"""Tasks by name: `get_task("tree-path", n_nodes=12)` and config round-trips.

A checkpoint stores `task.config_dict()` (which includes the task name);
`task_from_config` rebuilds the same task from it.
"""

from __future__ import annotations

from typing import Any

from mesainterp.errors import ConfigError, allowed
from mesainterp.tasks._common import config_from_dict
from mesainterp.tasks.base import Task
from mesainterp.tasks.graph_search import GraphSearchTask
from mesainterp.tasks.icl_regression import ICLRegressionTask
from mesainterp.tasks.maze import MazeTask
from mesainterp.tasks.tree_path import TreePathTask

__all__ = ["TASKS", "build_task", "get_task", "task_from_config"]

TASKS: dict[str, type[Task]] = {
    TreePathTask.name: TreePathTask,
    MazeTask.name: MazeTask,
    GraphSearchTask.name: GraphSearchTask,
    ICLRegressionTask.name: ICLRegressionTask,
}


def _task_class(name: object) -> type[Task]:
    if not isinstance(name, str) or name not in TASKS:
        raise ConfigError("task", f"unknown task {name!r}", allowed(sorted(TASKS)))
    return TASKS[name]


def get_task(name: str, **params: Any) -> Task:
    """The task `name` with `params` (unknown or invalid parameters are named).

    >>> task = mesainterp.get_task("tree-path", n_nodes=6, max_depth=3)
    >>> task.name, task.d_vocab, task.seq_len
    ('tree-path', ...)
    >>> batch = task.sample(4, seed=0)
    >>> batch.inputs.shape == (4, task.seq_len), sorted(batch.labels)[:3]
    (True, ['ancestors', 'depth', 'edge_pos'])
    >>> mesainterp.get_task("tree_path")
    Traceback (most recent call last):
    ...
    mesainterp.errors.ConfigError: task: unknown task 'tree_path' (allowed: 'graph-search', 'icl-regression', 'maze', 'tree-path')
    """
    cls = _task_class(name)
    task: Task = config_from_dict(cls, {"name": name, **params})
    return task


def build_task(name: object, params: object, *, where: str, name_field: str = "task") -> Task:
    """The task `name` with `params` read from a config file: every parameter is
    checked against the task dataclass's annotations, then its own range checks,
    and errors are named under `where` (``curriculum[1].task_params.max_depth``)."""
    from mesainterp.schema import parse, rebase

    try:
        cls = _task_class(name)
    except ConfigError as err:
        raise rebase(err, name_field, strip="task") from None
    try:
        task: Task = parse(cls, params, path="", build=cls)
    except ConfigError as err:
        raise rebase(err, where, strip=cls.name) from None
    return task


def task_from_config(config: dict[str, Any]) -> Task:
    """Inverse of `task.config_dict()`."""
    if not isinstance(config, dict) or "name" not in config:
        raise ConfigError("task.name", "missing task name", allowed(sorted(TASKS)))
    return get_task(config["name"], **{k: v for k, v in config.items() if k != "name"})
