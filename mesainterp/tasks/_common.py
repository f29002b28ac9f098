"""Pieces shared by the task generators: config checks, seeded draws, token metrics.

Kept private: the public surface of a task is its class (see `base.Task`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Self, get_args

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import ConfigError, allowed
from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, Metric, TaskBatch
from mesainterp.tasks.metrics import exact_match, logit_diff_of_pair

__all__ = [
    "Split",
    "Uniforms",
    "check_choice",
    "check_float",
    "check_int",
    "check_split",
    "config_dict_of",
    "config_from_dict",
    "in_split",
    "pick_family",
    "token_scores",
]


def check_int(task: str, field: str, value: object, lo: int, hi: int | None = None) -> None:
    """Refuse a non-int or out-of-range value, naming `task.field` and the allowed range."""
    span = f"an int in [{lo}, {hi}]" if hi is not None else f"an int >= {lo}"
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{task}.{field}", f"expected an int, got {value!r}", span)
    if value < lo or (hi is not None and value > hi):
        raise ConfigError(f"{task}.{field}", f"out of range: {value}", span)


def check_float(task: str, field: str, value: object, lo: float, hi: float | None = None) -> None:
    """Refuse a non-number or out-of-range value, naming `task.field`."""
    span = f"a number in [{lo}, {hi}]" if hi is not None else f"a number >= {lo}"
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise ConfigError(f"{task}.{field}", f"expected a number, got {value!r}", span)
    if value < lo or (hi is not None and value > hi):
        raise ConfigError(f"{task}.{field}", f"out of range: {value}", span)


Split = Literal["all", "train", "test"]


def check_split(task: str, split: object, test_fraction: object) -> None:
    check_choice(task, "split", split, get_args(Split))
    check_float(task, "test_fraction", test_fraction, 0.0, 1.0)
    if split != "all" and not 0.0 < test_fraction < 1.0:  # type: ignore[operator]
        raise ConfigError(
            f"{task}.test_fraction",
            f"{test_fraction} leaves split {split!r} empty",
            "a number strictly between 0 and 1",
        )


def in_split(key: object, split: str, test_fraction: float) -> bool:
    """Whether an instance with canonical `key` belongs to `split`.

    The split is a stable hash of the instance itself (not of the seed), so the
    train and test splits never share an underlying problem, whatever seeds
    draw them.
    """
    if split == "all":
        return True
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    is_test = int.from_bytes(digest, "big") < test_fraction * 2**64
    return is_test == (split == "test")


def check_choice(task: str, field: str, value: object, choices: Iterable[object]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{task}.{field}", f"unknown value {value!r}", allowed(choices))


def config_dict_of(task: Any) -> dict[str, Any]:
    """`{"name": ..., <every field>: value}` for a task dataclass (JSON-able)."""
    out: dict[str, Any] = {"name": task.name}
    for f in dataclasses.fields(task):
        out[f.name] = getattr(task, f.name)
    return out


def config_from_dict(cls: Any, data: dict[str, Any]) -> Any:
    """Build a task dataclass from a mapping; unknown fields are named with the known ones."""
    if not isinstance(data, dict):
        raise ConfigError(cls.name, f"expected a mapping, got {type(data).__name__}")
    data = dict(data)
    name = data.pop("name", cls.name)
    if name != cls.name:
        raise ConfigError("name", f"expected {cls.name!r}, got {name!r}", allowed([cls.name]))
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{cls.name}.{unknown[0]}", "unknown parameter", allowed(known))
    return cls(**data)


def pick_family(task: Any, family: str | None) -> str:
    families: tuple[str, ...] = task.counterfactual_families
    if family is None:
        return families[0]
    if family not in families:
        raise ConfigError(
            f"{task.name}.family", f"unknown counterfactual family {family!r}", allowed(families)
        )
    return family


class Uniforms:
    """Uniform [0, 1) draws pulled from a numpy Generator in chunks.

    Scalar `Generator` calls cost microseconds each; drawing in chunks keeps
    per-example generation cheap while staying a pure function of the seed.
    """

    def __init__(self, seed: int | Sequence[int], chunk: int = 4096) -> None:
        self._rng = np.random.default_rng(seed)
        self._chunk = chunk
        self._buf = self._rng.random(chunk)
        self._i = 0

    def random(self) -> float:
        if self._i >= self._chunk:
            self._buf = self._rng.random(self._chunk)
            self._i = 0
        u = float(self._buf[self._i])
        self._i += 1
        return u

    def below(self, k: int) -> int:
        """Uniform int in [0, k)."""
        return min(int(self.random() * k), k - 1)

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self.below(len(items))]

    def shuffled(self, items: Sequence[Any]) -> list[Any]:
        """Fisher-Yates shuffle of a copy."""
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng.standard_normal(shape)


def pair_at_positions(
    family: str, clean: TaskBatch, corrupted: TaskBatch, positions: Sequence[int]
) -> CounterfactualPair:
    """A pair whose metric reads `positions[i]` of example i; the answers there are
    what each half's targets say."""
    answer_pos = torch.tensor(list(positions), dtype=torch.long)
    rows = torch.arange(clean.batch_size)
    return CounterfactualPair(
        family=family,
        clean=clean,
        corrupted=corrupted,
        answer_pos=answer_pos,
        clean_answer=clean.targets[rows, answer_pos],
        corrupted_answer=corrupted.targets[rows, answer_pos],
    )


def token_scores(
    outputs: Float[Tensor, "batch pos d_vocab_out"], batch: TaskBatch, exact_key: str
) -> dict[str, Tensor]:
    """Teacher-forced argmax scores on supervised positions.

    `exact_key` is True where the argmax is right at every supervised position;
    since the targets are the model's own next inputs, this equals greedy
    decoding being right. `token_acc` is the fraction of supervised positions right.
    """
    if outputs.ndim != 3 or outputs.shape[:2] != batch.targets.shape:
        raise ConfigError(
            "outputs",
            f"expected shape [batch, pos, d_vocab_out] = [{batch.batch_size}, {batch.seq_len}, ...],"
            f" got {list(outputs.shape)}",
        )
    predicted = outputs.argmax(dim=-1)
    targets = batch.targets.to(outputs.device)
    mask = targets != IGNORE_INDEX
    n_right = ((predicted == targets) & mask).sum(dim=1)
    return {
        exact_key: exact_match(predicted, targets, mask),
        "token_acc": n_right.float() / mask.sum(dim=1).clamp(min=1).float(),
    }


class ConfiguredTask:
    """`config_dict` / `from_config`, shared by every task dataclass."""

    def config_dict(self) -> dict[str, Any]:
        return config_dict_of(self)

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Self:
        return config_from_dict(cls, data)  # type: ignore[no-any-return]


class PathTask(ConfiguredTask):
    """Token tasks whose answer is a path: the default metric is the logit difference
    at the first divergence, and `score` gives exact-path and token accuracy."""

    def default_metric(self, pair: CounterfactualPair) -> Metric:
        return logit_diff_of_pair(pair)

    def score(
        self, outputs: Float[Tensor, "batch pos d_vocab_out"], batch: TaskBatch
    ) -> dict[str, Tensor]:
        return token_scores(outputs, batch, "exact_path")
