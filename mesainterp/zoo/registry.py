"""The shipped model organisms, loaded by name from package data.

Checkpoints live under `mesainterp/zoo/checkpoints/<name>/` and are read through
`importlib.resources`, so they are found wherever the package is installed,
never through the source tree.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError, allowed
from mesainterp.model.build import random_init_twin
from mesainterp.model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    load_checkpoint,
    read_checkpoint_document,
)
from mesainterp.model.config import ModelConfig
from mesainterp.tasks.base import Task

__all__ = [
    "ZooEntry",
    "describe",
    "list_models",
    "load",
    "load_task",
    "random_init",
    "read_document",
]


@dataclass(frozen=True, kw_only=True)
class ZooEntry:
    """What the zoo table shows about one shipped model (read without its weights)."""

    name: str
    task: dict[str, Any] | None
    n_params: int | None
    size_bytes: int
    held_out: dict[str, Any] | None
    # Memorizers only: {size, seed, metrics} of the fixed set they were trained on.
    train_set: dict[str, Any] | None
    training_command: list[str] | None
    wall_time_s: float | None
    steps: int | None
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "n_params": self.n_params,
            "size_bytes": self.size_bytes,
            "held_out": self.held_out,
            "train_set": self.train_set,
            "training_command": self.training_command,
            "wall_time_s": self.wall_time_s,
            "steps": self.steps,
            "fingerprint": self.fingerprint,
        }


def _root() -> Traversable:
    return resources.files("mesainterp.zoo").joinpath("checkpoints")


def list_models() -> list[str]:
    """Names of the shipped models, sorted."""
    root = _root()
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and entry.joinpath(CONFIG_FILE).is_file()
    )


def _entry(name: str) -> Traversable:
    known = list_models()
    if name not in known:
        raise MesaInterpError(
            f"unknown zoo model {name!r} (allowed: {allowed(known) or 'none shipped'})"
        )
    return _root().joinpath(name)


def _with_directory(name: str, use: Any) -> Any:
    """Call `use(path)` with a real directory holding the model's files."""
    entry = _entry(name)
    if isinstance(entry, Path):
        return use(entry)
    # A zipped install: copy the two files out first.
    with tempfile.TemporaryDirectory(prefix="mesainterp-zoo-") as tmp:
        target = Path(tmp) / name
        target.mkdir()
        for filename in (CONFIG_FILE, WEIGHTS_FILE):
            with entry.joinpath(filename).open("rb") as src, open(target / filename, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return use(target)


def load(name: str) -> Checkpoint:
    """The shipped model `name` (weights verified against their fingerprint)."""
    checkpoint: Checkpoint = _with_directory(name, load_checkpoint)
    return checkpoint


def read_document(name: str) -> dict[str, Any]:
    """The validated checkpoint document of the shipped model `name`, without weights."""
    document: dict[str, Any] = _with_directory(name, read_checkpoint_document)
    return document


def load_task(name: str) -> Task:
    """The task the shipped model `name` was trained and evaluated on."""
    from mesainterp.tasks import task_from_config

    document = json.loads(_entry(name).joinpath(CONFIG_FILE).read_text())
    if document.get("task") is None:
        raise MesaInterpError(f"zoo model {name!r} records no task")
    return task_from_config(document["task"])


def random_init(name: str, *, seed: int | None = None) -> TransformerBridge:
    """Same architecture as the shipped model `name`, seeded random weights:
    the negative control for any claim about the trained model."""
    document = json.loads(_entry(name).joinpath(CONFIG_FILE).read_text())
    config = ModelConfig.from_dict(document["model"])
    return random_init_twin(config, seed=seed)


def describe(name: str) -> ZooEntry:
    """The zoo table row of `name`, from its config and file sizes only."""
    entry = _entry(name)
    document = read_document(name)
    meta = document.get("metadata", {})
    size = sum(
        entry.joinpath(f).stat().st_size
        if isinstance(entry, Path)
        else len(entry.joinpath(f).read_bytes())
        for f in (CONFIG_FILE, WEIGHTS_FILE)
    )
    return ZooEntry(
        name=name,
        task=document.get("task"),
        n_params=meta.get("n_params"),
        size_bytes=size,
        held_out=meta.get("held_out"),
        train_set=meta.get("train_set"),
        training_command=meta.get("training_command"),
        wall_time_s=meta.get("wall_time_s"),
        steps=meta.get("step"),
        fingerprint=document["fingerprint"],
    )
