"""Shipped model organisms: `load("tree-path")`, `list_models()`, `random_init(name)`."""

from mesainterp.zoo.registry import ZooEntry, describe, list_models, load, load_task, random_init

__all__ = ["ZooEntry", "describe", "list_models", "load", "load_task", "random_init"]
