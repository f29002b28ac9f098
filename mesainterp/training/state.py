"""Resumable training state: optimizer tensors in safetensors, the rest in JSON.

A run directory holds

    checkpoint/             the model (save_checkpoint: config.json + model.safetensors)
    optimizer.safetensors   AdamW moments and step counts, keyed "<param>.<field>"
    train_state.json        step, config, model fingerprint, wall time so far
    eval_log.jsonl          one line per held-out evaluation
    best/                   the checkpoint with the best held-out score so far

`train_state.json` is written last and names the model fingerprint, so a run
interrupted between files is detected on resume instead of silently mixing steps.
The only randomness in a step is the batch seed, a pure function of (seed, step),
so step + weights + optimizer state is everything needed to continue exactly.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mesainterp.errors import CheckpointError

__all__ = [
    "BEST_DIR",
    "CHECKPOINT_DIR",
    "EVAL_LOG",
    "OPTIMIZER_FILE",
    "STATE_FILE",
    "load_optimizer_state",
    "read_train_state",
    "save_optimizer_state",
    "write_json_atomic",
]

CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "train_state.json"
EVAL_LOG = "eval_log.jsonl"


def save_optimizer_state(
    optimizer: torch.optim.Optimizer, names: dict[int, str], path: Path
) -> None:
    """Write every per-parameter tensor of `optimizer.state` (atomically)."""
    tensors: dict[str, torch.Tensor] = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if not isinstance(value, torch.Tensor):
                    value = torch.tensor(value)
                tensors[f"{names[id(param)]}.{key}"] = value.detach().cpu().contiguous()
    fd, tmp = tempfile.mkstemp(prefix=".optimizer.", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, names: dict[int, str], path: Path
) -> None:
    """Fill `optimizer.state` from a file written by `save_optimizer_state`."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    by_param: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, field = key.rpartition(".")
        by_param.setdefault(name, {})[field] = value
    params = [p for group in optimizer.param_groups for p in group["params"]]
    expected = {names[id(p)] for p in params}
    if set(by_param) - expected:
        raise CheckpointError(
            f"{path}: optimizer state for unknown parameters {sorted(set(by_param) - expected)[:3]}"
        )
    for param in params:
        state = by_param.get(names[id(param)])
        if state is None:
            continue
        for field, value in state.items():
            if field != "step" and value.shape != param.shape:
                raise CheckpointError(
                    f"{path}: {names[id(param)]}.{field} has shape {tuple(value.shape)}, "
                    f"the parameter has {tuple(param.shape)}"
                )
        optimizer.state[param] = {k: v.to(param.device) for k, v in state.items()}


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_train_state(out_dir: Path) -> dict[str, Any]:
    path = out_dir / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{out_dir}: nothing to resume (no {STATE_FILE})")
    from mesainterp.safe_read import read_json

    document = read_json(path, error=CheckpointError)
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    for key in ("step", "config", "fingerprint"):
        if key not in document:
            raise CheckpointError(f"{path}: missing field {key!r}")
    return dict(document)
