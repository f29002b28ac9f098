"""The training recipes of the shipped models: `mesainterp train NAME --out DIR`
with no config file runs the preset of that name, which reproduces the zoo model."""

from __future__ import annotations

from typing import Any

from mesainterp.errors import ConfigError, allowed
from mesainterp.training.config import TrainConfig

__all__ = ["PRESETS", "preset"]

PRESETS: dict[str, dict[str, Any]] = {
    "tree-path": {
        "task": "tree-path",
        "task_params": {"n_nodes": 12, "max_depth": 5},
        "model": {
            "n_layers": 6,
            "d_model": 64,
            "n_heads": 2,
            "d_head": 32,
            "d_mlp": 256,
        },
        "steps": 8000,
        "batch_size": 64,
        "lr": 1e-3,
        "warmup_steps": 200,
        "weight_decay": 0.01,
        "eval_every": 250,
        "eval_n": 1000,
        "checkpoint_every": 250,
        "seed": 0,
        "curriculum": [
            {"until_step": 600, "task_params": {"max_depth": 3}},
            {"until_step": 1200, "task_params": {"max_depth": 4}},
        ],
    },
    "maze": {
        "task": "maze",
        "task_params": {"grid_n": 3, "split": "train"},
        "eval_task_params": {"split": "test"},
        "model": {"n_layers": 6, "d_model": 64, "n_heads": 2, "d_head": 32, "d_mlp": 256},
        "steps": 2500,
        "batch_size": 64,
        "lr": 1e-3,
        "warmup_steps": 200,
        "weight_decay": 0.01,
        "eval_every": 250,
        "eval_n": 1000,
        "checkpoint_every": 250,
        "seed": 0,
    },
    "graph-search": {
        "task": "graph-search",
        "task_params": {"n_vertices": 16, "max_lookahead": 5},
        "model": {"n_layers": 6, "d_model": 64, "n_heads": 2, "d_head": 32, "d_mlp": 256},
        "steps": 8000,
        "batch_size": 64,
        "lr": 1e-3,
        "warmup_steps": 200,
        "weight_decay": 0.01,
        "eval_every": 250,
        "eval_n": 1000,
        "checkpoint_every": 250,
        "seed": 0,
        "curriculum": [
            {"until_step": 800, "task_params": {"max_lookahead": 2}},
            {"until_step": 1600, "task_params": {"max_lookahead": 3}},
            {"until_step": 2400, "task_params": {"max_lookahead": 4}},
        ],
    },
    "icl-regression": {
        "task": "icl-regression",
        "task_params": {"d_x": 10, "n_context": 10, "d_model": 64},
        "model": {"n_layers": 4, "d_model": 64, "n_heads": 2, "d_head": 32, "d_mlp": 256},
        "steps": 1500,
        "batch_size": 128,
        "lr": 1e-3,
        "warmup_steps": 200,
        "weight_decay": 0.0,
        "eval_every": 250,
        "eval_n": 1000,
        "checkpoint_every": 250,
        "seed": 0,
    },
}


def preset(name: str) -> TrainConfig:
    """The recipe of the shipped model `name` (which is also its task's name)."""
    if name not in PRESETS:
        raise ConfigError("task", f"no training preset for {name!r}", allowed(sorted(PRESETS)))
    return TrainConfig.from_dict(PRESETS[name])
