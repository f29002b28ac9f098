"""Patching metrics: per-example values from logits, higher = more clean-like.

Every metric here has the task protocol's signature `(logits, batch) -> [batch]`
(`mesainterp.tasks.base.Metric`), so a task's own `default_metric(pair)` drops in
anywhere these do. `batch` may be None for metrics that do not read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import MesaInterpError

__all__ = [
    "MetricFn",
    "answer_logprob",
    "exact_path_accuracy",
    "logit_diff",
    "neg_kl_to_clean",
]

MetricFn = Callable[[Tensor, Any], Tensor]


def _at_positions(logits: Tensor, answer_pos: Tensor) -> Tensor:
    """logits[i, answer_pos[i]] -> [batch, vocab]."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, answer_pos.to(logits.device)]


def logit_diff(
    answer_pos: Int[Tensor, " batch"],
    clean_answer: Int[Tensor, " batch"],
    corrupted_answer: Int[Tensor, " batch"],
) -> MetricFn:
    """logit[clean answer] - logit[corrupted answer] at the answer position."""

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        at = _at_positions(logits, answer_pos)
        rows = torch.arange(at.shape[0], device=at.device)
        return at[rows, clean_answer.to(at.device)] - at[rows, corrupted_answer.to(at.device)]

    return metric


def answer_logprob(answer_pos: Int[Tensor, " batch"], answer: Int[Tensor, " batch"]) -> MetricFn:
    """log p(answer) at the answer position."""

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        logprobs = torch.log_softmax(_at_positions(logits, answer_pos).float(), dim=-1)
        rows = torch.arange(logprobs.shape[0], device=logprobs.device)
        return logprobs[rows, answer.to(logprobs.device)]

    return metric


def neg_kl_to_clean(
    clean_logits: Float[Tensor, "batch pos vocab"],
    answer_pos: Int[Tensor, " batch"] | None = None,
) -> MetricFn:
    """-KL(clean || patched) at the answer position (or averaged over all positions).

    Negated so that higher is more clean-like, like every other metric here; the clean
    run scores exactly 0.
    """
    clean = clean_logits.detach()

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        if answer_pos is not None:
            p_log = torch.log_softmax(_at_positions(clean, answer_pos).float(), dim=-1)
            q_log = torch.log_softmax(_at_positions(logits, answer_pos).float(), dim=-1)
            return -(p_log.exp() * (p_log - q_log)).sum(-1)
        p_log = torch.log_softmax(clean.float(), dim=-1)
        q_log = torch.log_softmax(logits.float(), dim=-1)
        return -(p_log.exp() * (p_log - q_log)).sum(-1).mean(-1)

    return metric


def exact_path_accuracy(
    targets: Int[Tensor, "batch pos"] | None = None, mask: Tensor | None = None
) -> MetricFn:
    """1.0 where the argmax at every scored position equals the target (teacher-forced
    multi-token answer, e.g. a whole path), else 0.0.

    Targets and mask come from the arguments, or else from `batch.targets` and
    `batch.answer_mask` of the `TaskBatch` the metric is called with.
    """

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        tgt = targets if targets is not None else getattr(batch, "targets", None)
        if tgt is None:
            raise MesaInterpError("exact_path_accuracy: give targets or call it with a TaskBatch")
        scored = mask if mask is not None else getattr(batch, "answer_mask", tgt >= 0)
        tgt = tgt.to(logits.device)
        scored = scored.to(logits.device)
        correct = (logits.argmax(-1) == tgt) | ~scored
        return correct.all(dim=-1).float()

    return metric
