"""The task -> planted search model registry and the planted model's control twin."""

from __future__ import annotations

import pytest

from mesainterp.errors import ConfigError
from mesainterp.evidence.planted import planted_chain_config, planted_chain_model
from mesainterp.evidence.planted_registry import planted_builder, planted_model, planted_tasks
from mesainterp.model import fingerprint, random_init_twin
from mesainterp.tasks.registry import get_task


def test_every_task_with_a_planted_model_is_listed():
    assert planted_tasks() == ["graph-search", "icl-regression", "maze", "tree-path"]


def test_the_planted_model_and_its_twin_are_the_ones_built_by_hand():
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    planted = planted_model(task)
    assert planted.name == "planted-chain (tree-path)"
    assert fingerprint(planted.model) == fingerprint(planted_chain_model(task))
    # The rule the evidence command and notebook 04 wrote by hand: seed 1.
    oracle_twin = random_init_twin(planted_chain_config(task), seed=1)
    assert fingerprint(planted.control) == fingerprint(oracle_twin)
    assert fingerprint(planted.control) != fingerprint(planted.model)


def test_a_task_without_a_planted_model_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"no planted search model for task 'x'.*'maze'"):
        planted_builder("x")
