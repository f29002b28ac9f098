"""Checkpoints: safetensors weights + a JSON config with a schema version.

Nothing here can execute code on load: tensors come from safetensors, the rest
from JSON. A directory holds exactly two files:

    config.json        {"format", "schema_version", "model", "task", "fingerprint", "metadata"}
    model.safetensors  the bridge's state dict
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import CheckpointError, ConfigError
from mesainterp.model.build import build_model
from mesainterp.model.config import ModelConfig
from mesainterp.model.fingerprinting import fingerprint, fingerprint_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_SCHEMA_VERSION",
    "Checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "mesainterp.checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_REQUIRED_FIELDS = ("format", "schema_version", "model", "task", "fingerprint", "metadata")


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A loaded checkpoint: the model plus everything needed to cite it."""

    model: TransformerBridge
    config: ModelConfig
    fingerprint: str
    task: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def save_checkpoint(
    model: TransformerBridge,
    directory: str | os.PathLike[str],
    *,
    config: ModelConfig,
    task: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Write `model` to `directory` atomically; returns the weights' fingerprint.

    The files are written to a sibling temporary directory and renamed into place,
    so a reader never sees half a checkpoint.

    >>> import tempfile, pathlib
    >>> config = mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0)
    >>> where = pathlib.Path(tempfile.mkdtemp()) / "tiny"
    >>> digest = mesainterp.save_checkpoint(mesainterp.build_model(config), where, config=config)
    >>> digest.startswith("sha256:"), sorted(p.name for p in where.iterdir())
    (True, ['config.json', 'model.safetensors'])
    """
    target = Path(directory)
    state = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    digest = fingerprint_state(state)
    document = {
        "format": CHECKPOINT_FORMAT,
        "schema_version": CHECKPOINT_SCHEMA_VERSION,
        "model": config.to_dict(),
        "task": task,
        "fingerprint": digest,
        "metadata": metadata or {},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(state, str(staging / WEIGHTS_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            with open(staging / name, "rb") as handle:
                os.fsync(handle.fileno())
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            backup.rmdir()
            target.rename(backup)
            staging.rename(target)
            shutil.rmtree(backup)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return digest


def read_checkpoint_document(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated JSON half of a checkpoint, without touching the weights."""
    path = Path(directory)
    config_path = path / CONFIG_FILE
    if not path.is_dir():
        raise CheckpointError(
            f"{path}: not a checkpoint directory (expected {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    if not config_path.is_file():
        raise CheckpointError(f"{path}: missing {CONFIG_FILE}")
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object")
    for name in _REQUIRED_FIELDS:
        if name not in document:
            raise CheckpointError(f"{config_path}: missing field {name!r}")
    if document["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{config_path}: field 'format' is {document['format']!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    version = document["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(
            f"{config_path}: field 'schema_version' must be an int, got {version!r}"
        )
    if version > CHECKPOINT_SCHEMA_VERSION:
        raise CheckpointError(
            f"{config_path}: schema_version {version} is newer than this mesainterp reads "
            f"(up to {CHECKPOINT_SCHEMA_VERSION}); upgrade mesainterp"
        )
    if version < 1:
        raise CheckpointError(f"{config_path}: schema_version {version} is not a known version")
    if document["task"] is not None and not isinstance(document["task"], dict):
        raise CheckpointError(f"{config_path}: field 'task' must be an object or null")
    if not isinstance(document["metadata"], dict):
        raise CheckpointError(f"{config_path}: field 'metadata' must be an object")
    return document


def load_checkpoint(
    directory: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    verify: bool = True,
) -> Checkpoint:
    """Load a checkpoint written by `save_checkpoint`, refusing anything malformed.

    >>> import tempfile, pathlib
    >>> config = mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0)
    >>> where = pathlib.Path(tempfile.mkdtemp()) / "tiny"
    >>> digest = mesainterp.save_checkpoint(mesainterp.build_model(config), where, config=config)
    >>> checkpoint = mesainterp.load_checkpoint(where)
    >>> checkpoint.fingerprint == digest, checkpoint.config.n_layers
    (True, 1)
    """
    path = Path(directory)
    document = read_checkpoint_document(path)
    try:
        config = ModelConfig.from_dict(document["model"], where="model")
    except ConfigError as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: {err}") from None
    weights_path = path / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{path}: missing {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from None
    if verify and fingerprint_state(state) != document["fingerprint"]:
        raise CheckpointError(
            f"{weights_path}: weights do not match the fingerprint in {CONFIG_FILE} "
            "(the file was modified or truncated)"
        )
    model = build_model(config)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path}: weights do not fit the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, tensor in model.state_dict().items():
        if tuple(tensor.shape) != tuple(state[name].shape):
            raise CheckpointError(
                f"{weights_path}: tensor {name!r} has shape {tuple(state[name].shape)}, "
                f"the config needs {tuple(tensor.shape)}"
            )
    model.load_state_dict(state, strict=True)
    if device is not None:
        model.to(device)
    model.eval()
    return Checkpoint(
        model=model,
        config=config,
        fingerprint=fingerprint(model) if verify else document["fingerprint"],
        task=document["task"],
        metadata=document["metadata"],
        path=path,
    )
