"""What every task (model organism of search) provides.

A task turns a seed into batches of examples; every batch is a `TaskBatch`:
model inputs, next-token targets, structured labels and the instances they came
from. Prompt length is fixed per task config, so positions line up across a
batch and across the two halves of a counterfactual pair.

Token tasks feed `inputs` as a LongTensor [batch, pos]. Continuous tasks
(icl-regression) feed a FloatTensor [batch, pos, d_model]; a `TransformerBridge`
treats a float input as the embedding (positional embeddings are still added).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import MesaInterpError

__all__ = [
    "IGNORE_INDEX",
    "CounterfactualPair",
    "Metric",
    "Task",
    "TaskBatch",
    "slice_batch",
    "slice_pair",
]

# Target value for positions that carry no training signal (torch's cross-entropy default).
IGNORE_INDEX = -100

# A metric maps a model output and the batch it came from to one value per example.
Metric = Callable[[Tensor, "TaskBatch"], Float[Tensor, " batch"]]


@dataclass(frozen=True, kw_only=True)
class TaskBatch:
    """A batch of task examples.

    inputs:      LongTensor [batch, pos] of tokens, or FloatTensor [batch, pos, d_model].
    targets:     what the output at each position should predict: LongTensor
                 [batch, pos] of next tokens with IGNORE_INDEX where unsupervised,
                 or FloatTensor [batch, pos] (regression) with NaN where unsupervised.
    prompt_len:  number of prompt positions; the first answer is predicted at
                 position prompt_len - 1.
    labels:      named per-example label tensors, batch-first (e.g. "goal" [batch],
                 "path" [batch, max_len] padded with -1).
    instances:   the structured instance each example came from (for solvers and figures).
    """

    inputs: Int[Tensor, "batch pos"] | Float[Tensor, "batch pos d_model"]
    targets: Int[Tensor, "batch pos"] | Float[Tensor, "batch pos"]
    prompt_len: int
    labels: dict[str, Tensor]
    instances: list[Any] = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def answer_mask(self) -> Tensor:
        """Bool [batch, pos]: positions whose output is scored."""
        if self.targets.dtype.is_floating_point:
            return ~torch.isnan(self.targets)
        return self.targets != IGNORE_INDEX


@dataclass(frozen=True, kw_only=True)
class CounterfactualPair:
    """Clean and corrupted batches that differ in exactly one controlled factor.

    Both halves have identical shapes and prompt lengths. `answer_pos` [batch] is
    the position whose output the default metric reads; `clean_answer` and
    `corrupted_answer` [batch] are the tokens the two runs should predict there
    (unused, -1, for regression tasks).
    """

    family: str
    clean: TaskBatch
    corrupted: TaskBatch
    answer_pos: Int[Tensor, " batch"]
    clean_answer: Int[Tensor, " batch"]
    corrupted_answer: Int[Tensor, " batch"]


def slice_batch(batch: TaskBatch, start: int, stop: int) -> TaskBatch:
    """Examples `start` to `stop` of `batch` (views of its tensors), labels and instances too."""
    rows = slice(start, stop)
    return dataclasses.replace(
        batch,
        inputs=batch.inputs[rows],
        targets=batch.targets[rows],
        labels={name: value[rows] for name, value in batch.labels.items()},
        instances=batch.instances[rows],
    )


def slice_pair(pair: CounterfactualPair, start: int, stop: int) -> CounterfactualPair:
    """Examples `start` to `stop` of both halves of `pair` (views of its tensors).

    A metric built from the slice (`Task.default_metric`) reads only these examples.
    """
    n = pair.clean.batch_size
    if not 0 <= start < stop <= n:
        raise MesaInterpError(f"slice_pair: need 0 <= start < stop <= {n}, got {start}:{stop}")
    rows = slice(start, stop)
    return dataclasses.replace(
        pair,
        clean=slice_batch(pair.clean, start, stop),
        corrupted=slice_batch(pair.corrupted, start, stop),
        answer_pos=pair.answer_pos[rows],
        clean_answer=pair.clean_answer[rows],
        corrupted_answer=pair.corrupted_answer[rows],
    )


@runtime_checkable
class Task(Protocol):
    """A seeded, deterministic generator of examples for one model organism."""

    name: ClassVar[str]
    counterfactual_families: ClassVar[tuple[str, ...]]

    @property
    def d_vocab(self) -> int:
        """Input vocabulary size (tokens), or the embedding width for continuous tasks."""
        ...

    @property
    def d_vocab_out(self) -> int:
        """Output width of the model (vocabulary, or 1 for scalar regression)."""
        ...

    @property
    def seq_len(self) -> int:
        """Length of every example: prompt plus (padded) answer."""
        ...

    def config_dict(self) -> dict[str, Any]:
        """The task's parameters as a JSON-able mapping (stored in checkpoints)."""
        ...

    def sample(self, n: int, *, seed: int) -> TaskBatch:
        """`n` fresh examples; the same seed always gives the same batch."""
        ...

    def counterfactual_pairs(
        self, n: int, *, seed: int, family: str | None = None
    ) -> CounterfactualPair:
        """`n` clean/corrupted pairs from a counterfactual family (default: the first)."""
        ...

    def default_metric(self, pair: CounterfactualPair) -> Metric:
        """The metric patching uses for this family (higher = more clean-like)."""
        ...

    def score(self, outputs: Tensor, batch: TaskBatch) -> dict[str, Tensor]:
        """Per-example held-out scores from teacher-forced outputs [batch, pos, d_vocab_out],
        e.g. {"exact_path": bool [batch], "token_acc": float [batch]} or {"mse": ...}."""
        ...
