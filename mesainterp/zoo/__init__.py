"""Shipped model organisms and the one model loader.

`load("tree-path")`, `list_models()`, `random_init(name)` read the shipped models;
`load_model(name_or_path)` loads a zoo name, a checkpoint or run directory, or a
HuggingFace directory; `control_twin(config, role=...)` builds the seeded control.
"""

from mesainterp.zoo.controls import (
    ROLES,
    Role,
    control_seed,
    control_twin,
    loaded_control_twin,
    random_init_model,
)
from mesainterp.zoo.loader import (
    LoadedModel,
    ModelSource,
    UnknownModel,
    load_model,
    resolve_model,
)
from mesainterp.zoo.registry import ZooEntry, describe, list_models, load, load_task, random_init

__all__ = [
    "ROLES",
    "LoadedModel",
    "ModelSource",
    "Role",
    "UnknownModel",
    "ZooEntry",
    "control_seed",
    "control_twin",
    "describe",
    "list_models",
    "load",
    "load_model",
    "load_task",
    "loaded_control_twin",
    "random_init",
    "random_init_model",
    "resolve_model",
]
