"""Patching metrics: per-example values from logits, higher = more clean-like.

`logit_diff` and `exact_path_accuracy` are defined once, in `mesainterp.tasks.metrics`,
and re-exported here. Every metric has the task protocol's signature `(logits, batch) -> [batch]`
(`mesainterp.tasks.base.Metric`), so a task's own `default_metric(pair)` drops in
anywhere these do. `batch` may be None for metrics that do not read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.shapes import shape_checked
from mesainterp.tasks.metrics import exact_path_accuracy, logit_diff, logits_at

__all__ = [
    "MetricFn",
    "answer_logprob",
    "exact_path_accuracy",
    "logit_diff",
    "neg_kl_to_clean",
]

MetricFn = Callable[[Tensor, Any], Tensor]


@shape_checked
def answer_logprob(answer_pos: Int[Tensor, " batch"], answer: Int[Tensor, " batch"]) -> MetricFn:
    """log p(answer) at the answer position."""

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        logprobs = torch.log_softmax(logits_at(logits, answer_pos).float(), dim=-1)
        rows = torch.arange(logprobs.shape[0], device=logprobs.device)
        return logprobs[rows, answer.to(logprobs.device)]

    return metric


@shape_checked
def neg_kl_to_clean(
    clean_logits: Float[Tensor, "batch pos d_vocab_out"],
    answer_pos: Int[Tensor, " batch"] | None = None,
) -> MetricFn:
    """-KL(clean || patched) at the answer position (or averaged over all positions).

    Negated so that higher is more clean-like, like every other metric here; the clean
    run scores exactly 0.
    """
    clean = clean_logits.detach()

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        if answer_pos is not None:
            p_log = torch.log_softmax(logits_at(clean, answer_pos).float(), dim=-1)
            q_log = torch.log_softmax(logits_at(logits, answer_pos).float(), dim=-1)
            return -(p_log.exp() * (p_log - q_log)).sum(-1)
        p_log = torch.log_softmax(clean.float(), dim=-1)
        q_log = torch.log_softmax(logits.float(), dim=-1)
        return -(p_log.exp() * (p_log - q_log)).sum(-1).mean(-1)

    return metric
