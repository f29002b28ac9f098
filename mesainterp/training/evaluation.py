"""Held-out evaluation: fresh samples from seeds no training run ever draws.

Training batches come from seeds below `HELD_OUT_SEED_BASE` (see `train_seed`);
evaluation uses `held_out_seed(k)` at or above it, so the two streams never share
a seed. Inputs are checked against the model before any forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.model.build import model_shape
from mesainterp.stats import wilson_interval
from mesainterp.tasks.base import IGNORE_INDEX, Task, TaskBatch, slice_batch
from mesainterp.training.forward import forward_chunks

__all__ = [
    "HELD_OUT_SEED_BASE",
    "EvalResult",
    "batch_loss",
    "evaluate",
    "evaluate_batch",
    "held_out_seed",
    "select_examples",
    "train_seed",
    "validate_inputs",
]

HELD_OUT_SEED_BASE = 2**60


def train_seed(seed: int, step: int) -> int:
    """The seed of training batch `step` of a run with `seed` (always < HELD_OUT_SEED_BASE)."""
    return seed * 2**32 + step


def held_out_seed(k: int = 0) -> int:
    """The `k`-th held-out seed; disjoint from every training seed."""
    return HELD_OUT_SEED_BASE + k


def validate_inputs(
    model: TransformerBridge,
    inputs: Int[Tensor, "batch pos"] | Float[Tensor, "batch pos d_model"],
) -> None:
    """Refuse inputs the model cannot read, naming the allowed range."""
    shape = model_shape(model)
    if inputs.ndim not in (2, 3):
        raise MesaInterpError(
            f"inputs: expected [batch, pos] tokens or [batch, pos, d_model] embeddings, "
            f"got shape {list(inputs.shape)}"
        )
    if inputs.shape[1] > shape.n_ctx:
        raise MesaInterpError(
            f"inputs: sequence length {inputs.shape[1]} exceeds the model's context "
            f"n_ctx={shape.n_ctx} (allowed: 1..{shape.n_ctx})"
        )
    if inputs.dtype.is_floating_point:
        if inputs.ndim != 3 or inputs.shape[2] != shape.d_model:
            raise MesaInterpError(
                f"inputs: float inputs are embeddings [batch, pos, d_model={shape.d_model}], "
                f"got shape {list(inputs.shape)}"
            )
        if not bool(torch.isfinite(inputs).all()):
            raise MesaInterpError("inputs: embeddings contain NaN or infinite values")
        return
    if inputs.ndim != 2:
        raise MesaInterpError(f"inputs: token inputs are [batch, pos], got {list(inputs.shape)}")
    if inputs.numel():
        lo, hi = int(inputs.min()), int(inputs.max())
        if lo < 0 or hi >= shape.d_vocab:
            bad = lo if lo < 0 else hi
            raise MesaInterpError(
                f"inputs: token {bad} is outside the model's vocabulary "
                f"(allowed: 0..{shape.d_vocab - 1})"
            )


def batch_loss(outputs: Float[Tensor, "batch pos out"], batch: TaskBatch) -> Tensor:
    """Cross-entropy on supervised token positions, or MSE on supervised float targets."""
    targets = batch.targets.to(outputs.device)
    if targets.dtype.is_floating_point:
        mask = ~torch.isnan(targets)
        pred = outputs[..., 0]
        return ((pred[mask] - targets[mask]) ** 2).mean()
    return torch.nn.functional.cross_entropy(
        rearrange(outputs, "batch pos out -> (batch pos) out").float(),
        rearrange(targets, "batch pos -> (batch pos)"),
        ignore_index=IGNORE_INDEX,
    )


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """Held-out metrics: means of the task's per-example scores, with a 95% Wilson
    interval for each boolean score, plus the held-out loss."""

    task: dict[str, Any]
    n: int
    seed: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "n": self.n, "seed": self.seed, "metrics": dict(self.metrics)}


@torch.no_grad()
def evaluate(
    model: TransformerBridge,
    task: Task,
    n: int = 1000,
    *,
    seed: int | None = None,
    batch_size: int = 250,
) -> EvalResult:
    """Score `model` on `n` fresh held-out samples of `task` (teacher-forced)."""
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise MesaInterpError(f"n: expected a positive int, got {n!r}")
    seed = held_out_seed(0) if seed is None else seed
    _check_output_width(model, task)
    return evaluate_batch(model, task, task.sample(n, seed=seed), seed=seed, batch_size=batch_size)


@torch.no_grad()
def evaluate_batch(
    model: TransformerBridge,
    task: Task,
    batch: TaskBatch,
    *,
    seed: int,
    batch_size: int = 250,
) -> EvalResult:
    """Score `model` on the given examples of `task` (e.g. a fixed training set);
    `seed` is only recorded, as the seed the examples were drawn from."""
    _check_output_width(model, task)
    validate_inputs(model, batch.inputs)
    n = batch.batch_size
    sums: dict[str, float] = {}
    trues: dict[str, int] = {}
    loss_sum = 0.0
    for rows, outputs in forward_chunks(model, batch.inputs, chunk_size=batch_size):
        part = slice_batch(batch, rows.start, rows.stop)
        loss_sum += float(batch_loss(outputs, part)) * part.batch_size
        for key, values in task.score(outputs, part).items():
            if values.dtype == torch.bool:
                trues[key] = trues.get(key, 0) + int(values.sum())
            sums[key] = sums.get(key, 0.0) + float(values.double().sum())
    metrics = {key: total / n for key, total in sums.items()}
    for key, k in trues.items():
        lo, hi = wilson_interval(k, n)
        metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = lo, hi
    metrics["loss"] = loss_sum / n
    return EvalResult(task=task.config_dict(), n=n, seed=seed, metrics=metrics)


def _check_output_width(model: TransformerBridge, task: Task) -> None:
    shape = model_shape(model)
    if task.d_vocab_out != shape.d_vocab_out:
        raise MesaInterpError(
            f"task {task.name!r} predicts {task.d_vocab_out} outputs but the model has "
            f"d_vocab_out={shape.d_vocab_out}"
        )


def select_examples(batch: TaskBatch, index: Int[Tensor, " k"]) -> TaskBatch:
    """The examples of `batch` at `index` (repeats allowed), labels and instances too."""
    rows = index.tolist()
    return TaskBatch(
        inputs=batch.inputs[index],
        targets=batch.targets[index],
        prompt_len=batch.prompt_len,
        labels={k: v[index] for k, v in batch.labels.items()},
        instances=[batch.instances[i] for i in rows] if batch.instances else [],
    )
