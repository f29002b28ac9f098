"""A prompt-pair file as the task of a run: what `--data FILE` gives patch, probe, search
(and `[data]` in a search config).

`PromptData` names the file, where its tokenizer lives and which columns are roles;
it is plain strings, so a worker (a Ray actor included) rebuilds the same pairs from
it. `PromptTask` presents the loaded `PromptPairs` as the task every pipeline already
takes: its pairs are the file's rows in file order (the first `n`), its metric the
pairs' default metric (logit difference, or the teacher-forced log-probability
difference for multi-token answers), its labels the file's label columns.

The tokenizer is, in order: `tokenizer=` (a directory), the model's own directory
when it is a HuggingFace directory holding tokenizer files, else none, and the file
then holds token ids. Every problem with the file names the file, row and column,
and is raised before any model is loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.prompts import EXAMPLE, PromptPairs, load_prompts
from mesainterp.prompts.metrics import ANSWER_SIGN
from mesainterp.tasks.base import CounterfactualPair, Metric, TaskBatch, slice_batch, slice_pair

__all__ = ["DATA_FAMILY", "PromptData", "PromptTask", "prompt_data", "task_for"]

# The family name the file's pairs carry in tables and provenance.
DATA_FAMILY = "data"
# Files whose presence makes a directory a tokenizer directory (as `load_hf_dir` checks).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in _TOKENIZER_FILES)


@dataclass(frozen=True, kw_only=True)
class PromptData:
    """A prompt-pair file, its tokenizer directory (None: the file holds token ids)
    and its role columns; absolute paths, so any worker finds them."""

    path: str
    tokenizer: str | None = None
    roles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"roles": list(self.roles)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptData:
        return cls(path=data["path"], tokenizer=data.get("tokenizer"), roles=tuple(data["roles"]))

    @cached_property
    def sha256(self) -> str:
        """The file's content hash: a resumed run refuses units from an edited file."""
        return hashlib.sha256(Path(self.path).read_bytes()).hexdigest()

    @cached_property
    def n_rows(self) -> int:
        """How many pairs the file holds (reading it checks every row)."""
        return len(self.load())

    def load(self) -> PromptPairs:
        """The file's pairs (every refusal names the file, row and column)."""
        tokenizer = None
        if self.tokenizer is not None:
            import transformers

            tokenizer = transformers.AutoTokenizer.from_pretrained(
                self.tokenizer, local_files_only=True
            )
        return load_prompts(self.path, tokenizer=tokenizer, roles=self.roles)


def prompt_data(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
    roles: Sequence[str] = (),
    fields: tuple[str, str] = ("--data", "--tokenizer"),
) -> PromptData:
    """Resolve `--data PATH` (with `--tokenizer`, `--roles`) for the model argument
    `model`: absolute paths, and the tokenizer chosen as the module docstring says.
    `fields` name the file and tokenizer options in errors."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(fields[0], f"{file}: no such file", "a .csv or .jsonl prompt-pair file")
    chosen: Path | None = None
    if tokenizer is not None:
        chosen = Path(tokenizer)
        if not (chosen.is_dir() and _has_tokenizer(chosen)):
            raise ConfigError(
                fields[1],
                f"{chosen}: not a tokenizer directory",
                f"a directory holding {' or '.join(_TOKENIZER_FILES)}",
            )
    elif model is not None and Path(model).is_dir() and _has_tokenizer(Path(model)):
        chosen = Path(model)
    return PromptData(
        path=str(file.resolve()),
        tokenizer=None if chosen is None else str(chosen.resolve()),
        roles=tuple(roles),
    )


class PromptTask:
    """The pairs of a `PromptData` file in the shape of a `Task` (see the module docstring)."""

    name: ClassVar[str] = "prompts"
    counterfactual_families: ClassVar[tuple[str, ...]] = (DATA_FAMILY,)

    def __init__(self, data: PromptData, pairs: PromptPairs | None = None) -> None:
        self.data = data
        self.pairs = data.load() if pairs is None else pairs
        self._pair = self.pairs.to_pair(family=DATA_FAMILY)
        # Multi-token pairs are teacher-forced: two model rows per example.
        self.rows_per_example = 2 if self.pairs.is_multi_token else 1

    @property
    def d_vocab(self) -> int:
        return 1 + max(max(r.clean + r.corrupted) for r in self.pairs.rows)

    @property
    def d_vocab_out(self) -> int:
        return self.d_vocab

    @property
    def seq_len(self) -> int:
        return self.pairs.seq_len

    @property
    def position_labels(self) -> tuple[str, ...]:
        return self.pairs.position_labels

    def config_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.data.to_dict(), "sha256": self.data.sha256,
                "rows": len(self.pairs)}  # fmt: skip

    def check_model(self, d_vocab: int, n_ctx: int, where: str = "--data") -> None:
        """Refuse token ids the model has no embedding for, or prompts longer than its
        context, naming the file and row."""
        file = Path(self.data.path).name
        if self.seq_len > n_ctx:
            raise ConfigError(where, f"{file}: sequences of {self.seq_len} exceed n_ctx {n_ctx}")
        for row in self.pairs.rows:
            ids = row.clean + row.corrupted + row.clean_answer + row.corrupted_answer
            if max(ids) >= d_vocab:
                raise ConfigError(
                    where, f"{row.where}: token id {max(ids)} outside the model's vocabulary",
                    f"ids < {d_vocab}",
                )  # fmt: skip

    def check_count(self, n: int, where: str) -> None:
        if n > len(self.pairs):
            raise ConfigError(
                where, f"{n} pairs asked, {Path(self.data.path).name} has {len(self.pairs)}"
            )

    def counterfactual_pairs(
        self, n: int, *, seed: int = 0, family: str | None = None
    ) -> CounterfactualPair:
        """The first `n` pairs in file order (`seed` is unused: nothing is sampled)."""
        if family not in (None, DATA_FAMILY):
            raise ConfigError("family", f"got {family!r}", allowed(self.counterfactual_families))
        self.check_count(n, "n")
        return slice_pair(self._pair, 0, n * self.rows_per_example)

    def default_metric(self, pair: CounterfactualPair) -> Metric:
        return self.pairs.default_metric(pair)

    def sample(self, n: int, *, seed: int) -> TaskBatch:
        """The clean prompts of the first `n` pairs (one row per example)."""
        return next(iter(self.batches(n, batch_size=n)))

    def batches(self, n: int, *, batch_size: int) -> Iterator[TaskBatch]:
        """The clean halves of the first `n` pairs in batches, one row per example
        (the clean-answer row of a teacher-forced pair), for probes."""
        n = min(n, len(self.pairs))
        clean = self._pair.clean
        if self.rows_per_example == 2:
            keep = list(range(0, 2 * n, 2))
            clean = TaskBatch(
                inputs=clean.inputs[keep],
                targets=clean.targets[keep],
                prompt_len=clean.prompt_len,
                labels={k: v[keep] for k, v in clean.labels.items() if k != ANSWER_SIGN},
                instances=[clean.instances[i] for i in keep],
            )
        for start in range(0, n, batch_size):
            yield slice_batch(clean, start, min(n, start + batch_size))

    def label_names(self) -> list[str]:
        """The columns a probe can target: numeric or boolean label columns."""
        return sorted(k for k in self._pair.clean.labels if k not in (EXAMPLE, ANSWER_SIGN))

    def score(self, outputs: Any, batch: TaskBatch) -> dict[str, Any]:
        raise MesaInterpError("a prompt-pair file has no task score; use its metric")


def task_for(loaded: Any, data: PromptData | None, purpose: str) -> Any:
    # loaded: a `zoo.LoadedModel` (a later layer, so not imported here)
    """The task a run uses: the file's pairs with `data`, else the model's own task."""
    if data is None:
        return loaded.require_task(purpose)
    task = PromptTask(data)
    cfg = loaded.model.cfg  # `model` is the layer after this one: read the bridge's config
    task.check_model(int(cfg.d_vocab), int(cfg.n_ctx))
    return task
