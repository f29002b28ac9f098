"""Registry: names, round-trips, refusals."""

from __future__ import annotations

import json

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.tasks import TASKS, Task, get_task, task_from_config


@pytest.mark.parametrize("name", sorted(TASKS))
def test_config_round_trip(name):
    task = get_task(name)
    cfg = task.config_dict()
    assert cfg["name"] == name
    again = task_from_config(json.loads(json.dumps(cfg)))
    assert again == task and again.config_dict() == cfg


def test_get_task_params():
    assert get_task("tree-path", n_nodes=10).n_nodes == 10


def test_unknown_task_lists_known():
    with pytest.raises(ConfigError, match="tree-path"):
        get_task("sudoku")


def test_unknown_param_named_with_allowed():
    with pytest.raises(ConfigError, match=r"tree-path\.n_leaves.*n_nodes"):
        get_task("tree-path", n_leaves=3)


def test_invalid_param_value_named():
    with pytest.raises(ConfigError, match="max_depth"):
        task_from_config({"name": "tree-path", "max_depth": -1})


def test_missing_name():
    with pytest.raises(ConfigError, match="name"):
        task_from_config({"n_nodes": 3})


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_satisfies_the_protocol(name):
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name
    batch = task.sample(2, seed=0)
    assert batch.seq_len == task.seq_len and batch.prompt_len <= task.seq_len
    pair = task.counterfactual_pairs(2, seed=0)
    assert pair.family == task.counterfactual_families[0]
    assert pair.clean.inputs.shape == pair.corrupted.inputs.shape == batch.inputs.shape
    out = torch.zeros(2, task.seq_len, task.d_vocab_out)
    assert task.default_metric(pair)(out, pair.clean).shape == (2,)
    assert all(v.shape == (2,) for v in task.score(out, batch).values())
