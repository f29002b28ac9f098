"""Default metrics for prompt pairs: higher = more clean-like, one value per row.

Single-token answers: the logit difference, logit[clean answer] - logit[corrupted
answer] at the last prompt position, the metric of the IOI and most patching papers.

Multi-token answers: the difference of the answers' teacher-forced log-probabilities,

    log p(clean answer | prompt) - log p(corrupted answer | prompt),

each the sum over the answer's tokens of log p(token | prompt, earlier answer tokens),
read from one forward over the prompt with the answer appended. It reduces to the
logit difference for one-token answers (the softmax normaliser cancels), and unlike a
first-token logit difference it sees answers that share a first token. A row holds
one prompt and one continuation, so `PromptPairs.to_pair` gives each example two rows
(see there); the metric is +log p on a clean-answer row and -log p on a
corrupted-answer row, and the two rows of an example sum to its difference.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.tasks.base import CounterfactualPair, Metric, TaskBatch
from mesainterp.tasks.metrics import logit_diff_of_pair

__all__ = ["ANSWER_SIGN", "answer_logprob_diff", "default_metric"]

# The TaskBatch label that says which answer a row continues with: +1 clean, -1 corrupted.
ANSWER_SIGN = "answer_sign"


def answer_logprob_diff(pair: CounterfactualPair) -> Metric:
    """Signed teacher-forced log-probability of each row's answer (see the module docstring).

    The answer tokens are `pair.clean.targets` at `pair.clean.answer_mask`; the sign is
    the clean batch's `answer_sign` label. Both halves of the pair share them, so the
    metric reads the same answer whichever run's logits it gets.
    """
    targets = pair.clean.targets
    scored = pair.clean.answer_mask
    if ANSWER_SIGN not in pair.clean.labels:
        raise ConfigError(
            "pair", f"the clean batch has no {ANSWER_SIGN!r} label", "a PromptPairs.to_pair() pair"
        )
    sign = pair.clean.labels[ANSWER_SIGN]

    def metric(
        outputs: Float[Tensor, "batch pos d_vocab_out"], batch: TaskBatch | None = None
    ) -> Float[Tensor, " batch"]:
        if outputs.shape[:2] != targets.shape:
            raise ConfigError(
                "outputs",
                f"expected [batch, pos, vocab] with [batch, pos] = {list(targets.shape)}, "
                f"got {list(outputs.shape)}",
            )
        logprobs = torch.log_softmax(outputs.float(), dim=-1)
        mask = scored.to(outputs.device)
        picked = logprobs.gather(-1, targets.clamp(min=0).to(outputs.device)[..., None])[..., 0]
        total = torch.where(mask, picked, 0.0).sum(dim=-1)
        return total * sign.to(outputs.device, total.dtype)

    return metric


def default_metric(pair: CounterfactualPair) -> Metric:
    """The logit difference for a single-token pair, the signed answer log-probability
    for a multi-token one (a pair with the `answer_sign` label)."""
    if ANSWER_SIGN in pair.clean.labels:
        return answer_logprob_diff(pair)
    return logit_diff_of_pair(pair)
