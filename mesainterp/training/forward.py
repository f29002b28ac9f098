"""Run a model over many inputs: batched, without gradients, in eval mode, in chunks.

The one forward pass the held-out evaluation, the evidence battery and circuit
search share when they only need outputs: no hooks, no gradient graph, at most
`chunk_size` examples on the model's device at a time (so a large held-out set
never holds every example's activations at once), and the model's train/eval
mode restored afterwards, even on an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import MesaInterpError
from mesainterp.model.placement import to_model

__all__ = ["eval_mode", "forward_chunks", "forward_logits"]

Inputs = Int[Tensor, "batch pos"] | Float[Tensor, "batch pos d_model"]


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode inside the block, its own mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise MesaInterpError(f"chunk_size: expected a positive int or None, got {chunk_size!r}")


def forward_chunks(
    model: torch.nn.Module | Callable[[Tensor], Tensor],
    inputs: Inputs,
    *,
    chunk_size: int | None = None,
) -> Iterator[tuple[slice, Float[Tensor, "chunk pos out"]]]:
    """(rows, outputs) for consecutive chunks of `inputs` (None: one chunk of all).

    Each chunk runs under `torch.no_grad()` in eval mode, its inputs moved to the
    model; the outputs stay where the model put them.
    """
    _check_chunk_size(chunk_size)
    n = int(inputs.shape[0])
    step = chunk_size or max(n, 1)
    module = model if isinstance(model, torch.nn.Module) else None
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        part = inputs[rows]
        with torch.no_grad():
            if module is None:
                out = model(part)
            else:
                with eval_mode(module):
                    out = module(to_model(module, part))
        yield rows, out


def forward_logits(
    model: torch.nn.Module | Callable[[Tensor], Tensor],
    inputs: Inputs,
    *,
    chunk_size: int | None = None,
) -> Float[Tensor, "batch pos out"]:
    """The model's outputs on every example of `inputs`, on the CPU, computed in
    chunks of `chunk_size` (see `forward_chunks`)."""
    parts = [out.detach().cpu() for _, out in forward_chunks(model, inputs, chunk_size=chunk_size)]
    if not parts:
        raise MesaInterpError("inputs: expected at least one example, got an empty batch")
    return torch.cat(parts)
