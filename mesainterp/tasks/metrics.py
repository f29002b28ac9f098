"""The two answer metrics every layer shares, written once.

- `logit_diff`: logit(clean answer) - logit(corrupted answer) at each example's
  answer position (the default patching metric of the path tasks).
- `exact_match` / `exact_path_accuracy`: right at every scored position (a whole
  path and its END), the score `Task.score` reports as "exact_path".

They live with the tasks because tasks are the first stage: patching, training,
probes and evidence all import from here (`mesainterp.patching.metrics` re-exports
them). Every metric has the task protocol's signature `(logits, batch) -> [batch]`;
`batch` may be None where the metric does not read it.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.shapes import shape_checked
from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, Metric

__all__ = [
    "check_outputs",
    "exact_match",
    "exact_path_accuracy",
    "logit_diff",
    "logit_diff_of_pair",
    "logits_at",
]


def check_outputs(outputs: Tensor, batch: int, layout: str = "[batch, pos, d_vocab_out]") -> None:
    """Refuse outputs that are not 3-D with `batch` examples, naming the expected layout."""
    if outputs.ndim != 3 or outputs.shape[0] != batch:
        raise ConfigError(
            "outputs",
            f"expected {layout} with the pair's batch of {batch}, got {list(outputs.shape)}",
        )


def logits_at(
    logits: Float[Tensor, "batch pos d_vocab_out"], answer_pos: Int[Tensor, " batch"]
) -> Float[Tensor, "batch d_vocab_out"]:
    """logits[i, answer_pos[i]] for every example i."""
    check_outputs(logits, int(answer_pos.shape[0]))
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, answer_pos.to(logits.device)]


@shape_checked
def logit_diff(
    answer_pos: Int[Tensor, " batch"],
    clean_answer: Int[Tensor, " batch"],
    corrupted_answer: Int[Tensor, " batch"],
) -> Metric:
    """logit[clean answer] - logit[corrupted answer] at the answer position."""

    def metric(logits: Float[Tensor, "batch pos d_vocab_out"], batch: Any = None) -> Tensor:
        at = logits_at(logits, answer_pos)
        rows = torch.arange(at.shape[0], device=at.device)
        return at[rows, clean_answer.to(at.device)] - at[rows, corrupted_answer.to(at.device)]

    return metric


def logit_diff_of_pair(pair: CounterfactualPair) -> Metric:
    """`logit_diff` at the pair's answer positions, between its two answers."""
    return logit_diff(pair.answer_pos, pair.clean_answer, pair.corrupted_answer)


def exact_match(
    predicted: Int[Tensor, "batch pos"],
    targets: Int[Tensor, "batch pos"],
    scored: Bool[Tensor, "batch pos"] | None = None,
) -> Bool[Tensor, " batch"]:
    """True where `predicted` equals `targets` at every scored position
    (default: every position whose target is not IGNORE_INDEX)."""
    targets = targets.to(predicted.device)
    scored = (targets != IGNORE_INDEX) if scored is None else scored.to(predicted.device)
    return ((predicted == targets) | ~scored).all(dim=-1)


@shape_checked
def exact_path_accuracy(
    targets: Int[Tensor, "batch pos"] | None = None, mask: Bool[Tensor, "batch pos"] | None = None
) -> Metric:
    """1.0 where the argmax at every scored position equals the target (teacher-forced
    multi-token answer, e.g. a whole path), else 0.0.

    Targets and mask come from the arguments, or else from `batch.targets` and
    `batch.answer_mask` of the `TaskBatch` the metric is called with.
    """

    def metric(logits: Float[Tensor, "batch pos d_vocab_out"], batch: Any = None) -> Tensor:
        tgt = targets if targets is not None else getattr(batch, "targets", None)
        if tgt is None:
            raise MesaInterpError("exact_path_accuracy: give targets or call it with a TaskBatch")
        scored = mask if mask is not None else getattr(batch, "answer_mask", tgt >= 0)
        return exact_match(logits.argmax(-1), tgt, scored).float()

    return metric
