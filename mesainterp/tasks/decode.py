"""Greedy decoding of token tasks: the slow oracle for teacher-forced scoring.

`score(outputs, batch)["exact_path"]` reads one teacher-forced forward pass;
`greedy_exact` generates the answer token by token from the prompt alone, the
way the model would be used. The two agree exactly, because the teacher-forced
inputs are the model's own greedy outputs for as long as those are right.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.shapes import shape_checked
from mesainterp.tasks.base import TaskBatch
from mesainterp.tasks.metrics import exact_match

__all__ = ["greedy_decode", "greedy_exact"]

Model = Callable[[Tensor], Tensor]


@torch.no_grad()
@shape_checked
def greedy_decode(model: Model, batch: TaskBatch) -> Int[Tensor, "batch pos"]:
    """Tokens [batch, pos]: the prompt, then the model's greedy continuation.

    `model` maps tokens [batch, pos] to logits [batch, pos, d_vocab_out] (a
    TransformerBridge does). Generation runs to the batch's sequence length;
    positions after an END are still filled but never scored.
    """
    if batch.inputs.dtype.is_floating_point:
        raise ConfigError("batch.inputs", "greedy decoding needs token inputs", "a LongTensor")
    p0 = batch.prompt_len
    tokens = batch.inputs.clone()
    tokens[:, p0:] = 0
    for t in range(p0, batch.seq_len):
        logits = model(tokens[:, :t])
        tokens[:, t] = logits[:, -1].argmax(dim=-1).to(tokens.device)
    return tokens


def greedy_exact(model: Model, batch: TaskBatch) -> Bool[Tensor, " batch"]:
    """True where greedy generation reproduces every supervised target (path and END)."""
    tokens = greedy_decode(model, batch)
    # The token generated at t + 1 answers the target read out at t.
    return exact_match(tokens[:, 1:], batch.targets[:, :-1].to(tokens.device))
