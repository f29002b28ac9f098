"""Which hand-built planted search model stands for each task, and its control twin.

    graph-search     planted-reach   reachability, one hop per layer
    icl-regression   planted-gd      one step of gradient descent
    maze             planted-flood   flood fill from the goal
    tree-path        planted-chain   backward chaining, one tree level per layer

The planted model is the positive control of the evidence battery: the command line,
notebooks and tests all take it (and its seeded random-init twin) from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, allowed
from mesainterp.evidence.planted import (
    planted_chain_config,
    planted_chain_model,
    planted_gd_config,
    planted_gd_model,
)
from mesainterp.evidence.planted_graph import planted_reach_config, planted_reach_model
from mesainterp.evidence.planted_maze import planted_flood_config, planted_flood_model
from mesainterp.model.config import ModelConfig
from mesainterp.tasks.base import Task
from mesainterp.zoo.controls import control_twin

__all__ = [
    "PLANTED",
    "PlantedBuilder",
    "PlantedModel",
    "planted_builder",
    "planted_model",
    "planted_tasks",
]


@dataclass(frozen=True, kw_only=True)
class PlantedBuilder:
    """How to build one task's planted model: its weights, its architecture, its label."""

    build: Callable[[Any], TransformerBridge]
    config: Callable[[Any], ModelConfig]
    label: str


PLANTED: dict[str, PlantedBuilder] = {
    "graph-search": PlantedBuilder(
        build=planted_reach_model, config=planted_reach_config, label="planted-reach"
    ),
    "icl-regression": PlantedBuilder(
        build=planted_gd_model, config=planted_gd_config, label="planted-gd"
    ),
    "maze": PlantedBuilder(
        build=planted_flood_model, config=planted_flood_config, label="planted-flood"
    ),
    "tree-path": PlantedBuilder(
        build=planted_chain_model, config=planted_chain_config, label="planted-chain"
    ),
}


@dataclass(frozen=True, kw_only=True)
class PlantedModel:
    """A task's planted model, its control twin, and the name tables show."""

    model: TransformerBridge
    control: TransformerBridge
    config: ModelConfig
    name: str


def planted_tasks() -> list[str]:
    """The task names that have a planted search model, sorted."""
    return sorted(PLANTED)


def planted_builder(task_name: str) -> PlantedBuilder:
    """The builder for `task_name`; refuses a task without one, naming those with one."""
    if task_name not in PLANTED:
        raise ConfigError(
            "task", f"no planted search model for task {task_name!r}", allowed(PLANTED)
        )
    return PLANTED[task_name]


def planted_model(task: Task) -> PlantedModel:
    """The planted search model for `task` and its seeded control twin."""
    builder = planted_builder(task.name)
    config = builder.config(task)
    return PlantedModel(
        model=builder.build(task),
        control=control_twin(config, role="planted"),
        config=config,
        name=f"{builder.label} ({task.name})",
    )
