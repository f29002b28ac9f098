"""Load a model by name or path: the one resolver behind every command and worker.

    load_model("tree-path")           a shipped zoo model
    load_model("runs/tree/")          a run directory (its checkpoint/) or a checkpoint
    load_model("hf/my-gpt2/")         a HuggingFace model directory (config.json with
                                      a `model_type`, safetensors weights), loaded offline

`resolve_model` decides which of the three a string names without reading any
weights, so a command can refuse a bad argument before any work; `load_model`
then loads it. A directory wins over a zoo name of the same spelling, and a zoo
name is never read as a path (`zoo.load` refuses one).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError, allowed
from mesainterp.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CONFIG_FILE,
    Checkpoint,
    load_checkpoint,
    read_checkpoint_document,
)
from mesainterp.model.config import ModelConfig
from mesainterp.model.fingerprinting import fingerprint
from mesainterp.tasks.base import Task
from mesainterp.training.state import CHECKPOINT_DIR
from mesainterp.zoo import registry

__all__ = [
    "MODEL_KINDS",
    "LoadedModel",
    "ModelKind",
    "ModelSource",
    "UnknownModel",
    "load_model",
    "model_document",
    "resolve_model",
]

ModelKind = Literal["zoo", "checkpoint", "hf"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)

# Where the HuggingFace loader lives; imported only when an HF directory is loaded.
HF_LOADER = "mesainterp.model:load_hf_dir"


class UnknownModel(MesaInterpError):
    """The argument names no directory and no shipped model."""


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """What a model argument names, decided without reading weights.

    `ref` is what a worker reloads from (a zoo name or an absolute directory);
    `name` is what tables, titles and provenance show.
    """

    kind: ModelKind
    ref: str
    name: str


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    """A loaded model and everything known about it.

    `task` is None when the model records none (an HF directory, a bare checkpoint);
    `checkpoint` is None for an HF directory.
    """

    model: TransformerBridge
    task: Task | None
    checkpoint: Checkpoint | None
    fingerprint: str
    name: str
    source: ModelSource

    @property
    def config(self) -> ModelConfig | None:
        """The native architecture (None for an HF model)."""
        return None if self.checkpoint is None else self.checkpoint.config

    def require_task(self, purpose: str = "run on") -> Task:
        """The model's task, or a one-line refusal naming what needed it."""
        if self.task is None:
            raise MesaInterpError(
                f"{self.name}: the model records no task to {purpose}"
                " (allowed: a zoo model or a checkpoint saved with its task)"
            )
        return self.task


def _directory_kind(path: Path) -> ModelKind:
    """'checkpoint' or 'hf', from config.json alone."""
    config = path / CONFIG_FILE
    try:
        document = json.loads(config.read_text()) if config.is_file() else None
    except (OSError, ValueError):
        document = None  # load_checkpoint names the problem precisely
    if isinstance(document, dict) and "model_type" in document and "format" not in document:
        return "hf"
    if document is None and not any(path.glob("*.safetensors")):
        raise UnknownModel(
            f"{path}: not a checkpoint directory or a HuggingFace model directory"
            f" (no {CONFIG_FILE}; expected {CONFIG_FILE} with format {CHECKPOINT_FORMAT!r}"
            " or with a model_type, beside safetensors weights)"
        )
    return "checkpoint"


def resolve_model(name_or_path: str | os.PathLike[str]) -> ModelSource:
    """Which kind of model `name_or_path` names; refuses anything else in one line."""
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.is_dir():
        if (path / CHECKPOINT_DIR).is_dir():  # a run directory: its checkpoint
            path = path / CHECKPOINT_DIR
        kind = _directory_kind(path)
        shown = Path(text).resolve().name
        return ModelSource(kind=kind, ref=str(path.resolve()), name=shown)
    known = registry.list_models()
    if text in known:
        return ModelSource(kind="zoo", ref=text, name=text)
    what = "a file" if path.exists() else "not a checkpoint directory"
    raise UnknownModel(
        f"{text}: {what}, a HuggingFace model directory or a zoo model"
        f" (unknown zoo model {text!r}; shipped: {allowed(known) or 'none'})"
    )


def model_document(name_or_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The checkpoint document (model config, task, fingerprint, metadata) of a zoo
    model or checkpoint, read without its weights; None for a HuggingFace directory."""
    source = resolve_model(name_or_path)
    if source.kind == "hf":
        return None
    if source.kind == "zoo":
        return registry.read_document(source.ref)
    return read_checkpoint_document(source.ref)


def _hf_loader() -> Callable[[str], object]:
    module, _, name = HF_LOADER.partition(":")
    loader = getattr(importlib.import_module(module), name, None)
    if loader is None:
        raise MesaInterpError(
            f"this mesainterp cannot load HuggingFace model directories ({HF_LOADER} is missing)"
        )
    return cast(Callable[[str], object], loader)


def _load_hf(source: ModelSource) -> LoadedModel:
    loaded = _hf_loader()(source.ref)
    # The loader returns the bridge, or a value carrying it as `.model`.
    model = loaded if isinstance(loaded, TransformerBridge) else getattr(loaded, "model", None)
    if not isinstance(model, TransformerBridge):
        raise MesaInterpError(f"{source.ref}: {HF_LOADER} returned no TransformerBridge")
    return LoadedModel(
        model=model,
        task=None,
        checkpoint=None,
        fingerprint=fingerprint(model),
        name=source.name,
        source=source,
    )


def load_model(name_or_path: str | os.PathLike[str]) -> LoadedModel:
    """Load a zoo model, a checkpoint or run directory, or a HuggingFace directory.

    >>> import tempfile, pathlib
    >>> from mesainterp.model import save_checkpoint
    >>> config = mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny"
    >>> digest = save_checkpoint(mesainterp.build_model(config), path, config=config)
    >>> loaded = mesainterp.load_model(path)
    >>> loaded.name, loaded.task, loaded.config == config, loaded.fingerprint == digest
    ('tiny', None, True, True)
    >>> loaded.model(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 11])
    """
    from mesainterp.tasks.registry import task_from_config

    source = resolve_model(name_or_path)
    if source.kind == "hf":
        return _load_hf(source)
    checkpoint = registry.load(source.ref) if source.kind == "zoo" else load_checkpoint(source.ref)
    return LoadedModel(
        model=checkpoint.model,
        task=None if checkpoint.task is None else task_from_config(checkpoint.task),
        checkpoint=checkpoint,
        fingerprint=checkpoint.fingerprint,
        name=source.name,
        source=source,
    )
