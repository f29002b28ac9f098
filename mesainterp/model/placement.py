"""Where a model lives: its device and dtype, and inputs moved there.

An analysis never moves or casts the model; it moves its inputs to the model.
Tokens keep their integer dtype; float inputs (embeddings fed directly, e.g. the
icl-regression task) take the model's floating dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["model_device", "model_dtype", "to_model"]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (cpu for a parameterless module)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 if none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def to_model(model: torch.nn.Module, inputs: Tensor) -> Tensor:
    """`inputs` on the model's device; float inputs also in the model's dtype.

    A no-op (the same tensor) when they are already there.
    """
    device = model_device(model)
    if inputs.is_floating_point():
        return inputs.to(device=device, dtype=model_dtype(model))
    return inputs.to(device)
