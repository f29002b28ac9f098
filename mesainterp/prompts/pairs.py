"""`PromptPairs`: clean/corrupted prompt pairs for any model, as the toolkit's pairs.

Tasks make their own token sequences; this carries a researcher's prompts instead
(built from text with any HuggingFace-style tokenizer, or from token ids) and turns
them into the `CounterfactualPair` that patching, attribution, discovery and probes
already take, with a ready metric and names for the positions.

One prompt length per dataset: every row's clean and corrupted prompt must have the
same number of tokens, and rows that differ are refused naming the row. Padding is
not offered, on purpose: the models here run without an attention mask, so pads
would be attended to and would change every activation; prompts of another length
belong in a dataset of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.prompts.columns import (
    EXAMPLE,
    LabelValue,
    checked_labels,
    checked_roles,
    prompt_columns,
    token_ids,
)
from mesainterp.prompts.metrics import ANSWER_SIGN, default_metric
from mesainterp.prompts.positions import label_positions, position_label
from mesainterp.prompts.rows import (
    PromptRow,
    PromptText,
    as_text,
    check_one_length,
    check_row,
    tokenize_row,
)
from mesainterp.prompts.tokenizer import check_tokenizer, token_strings, vocab_size
from mesainterp.shapes import shape_checked
from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair, Metric, TaskBatch

__all__ = ["PromptPairs"]

# Input id after a short answer continuation; never read (the model is causal and no
# scored position comes after it).
_FILL = 0


@dataclass(frozen=True, eq=False)
class PromptPairs:
    """Aligned clean/corrupted prompt pairs with answers, labels and named roles.

    Build with `from_strings`, `from_token_ids`, `from_rows` or `load_prompts`, not
    directly. `rows` hold the token ids; `labels` per-row values by column name;
    `roles` a position per row by role name ("S2", "IO", "END"), counted in the
    prompt from 0; `tokens` each clean prompt's token strings; `texts` the strings
    the rows came from (None for token ids).

    >>> pairs = PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2]], [[6, 1, 2], [5, 1, 2]], [5, 6], [6, 5],
    ...     roles={"S": [0, 0], "END": [-1, -1]},
    ... )
    >>> len(pairs), pairs.prompt_len, pairs.position_labels
    (2, 3, ('S', '1', 'END'))
    >>> pair = pairs.to_pair()
    >>> pair.clean.inputs.tolist(), pair.answer_pos.tolist(), pair.clean_answer.tolist()
    ([[5, 1, 2], [6, 1, 2]], [2, 2], [5, 6])
    """

    rows: tuple[PromptRow, ...]
    tokens: tuple[tuple[str, ...], ...]
    labels: Mapping[str, tuple[LabelValue, ...]] = field(default_factory=dict)
    roles: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    texts: tuple[PromptText, ...] | None = None

    # ---- construction -------------------------------------------------------------

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[PromptRow],
        *,
        tokenizer: Any | None = None,
        labels: Mapping[str, Sequence[LabelValue]] | None = None,
        roles: Mapping[str, Sequence[int]] | None = None,
        texts: Sequence[PromptText] | None = None,
        vocab_size: int | None = None,
    ) -> PromptPairs:
        """Check tokenized rows one by one and against each other, then assemble."""
        if not rows:
            raise ConfigError("rows", "no prompt pairs given", "one row or more")
        size = vocab_size if vocab_size is not None else _vocab_size(tokenizer)
        for row in rows:
            check_row(row, tokenizer=tokenizer, vocab_size=size)
        check_one_length(rows, tokenizer=tokenizer)
        both = sorted(set(labels or {}) & set(roles or {}))
        if both:
            raise ConfigError(f"roles.{both[0]}", "also a label name", "names used once")
        return cls(
            rows=tuple(rows),
            tokens=tuple(tuple(token_strings(tokenizer, row.clean)) for row in rows),
            labels=checked_labels(labels or {}, len(rows)),
            roles=checked_roles(roles or {}, rows),
            texts=None if texts is None else tuple(texts),
        )

    @classmethod
    def from_strings(
        cls,
        clean: Sequence[str],
        corrupted: Sequence[str],
        clean_answer: Sequence[str],
        corrupted_answer: Sequence[str],
        *,
        tokenizer: Any,
        labels: Mapping[str, Sequence[LabelValue]] | None = None,
        roles: Mapping[str, Sequence[int]] | None = None,
        add_special_tokens: bool = True,
    ) -> PromptPairs:
        """Pairs from text, one entry per row in each column.

        Answers are continuations: write them as they follow the prompt (" Mary",
        with its space, after "... gave a drink to"); they may be several tokens.
        The prompts get the tokenizer's special tokens (a BOS, if it adds one) unless
        `add_special_tokens=False`; answers never do.

        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> from transformers import PreTrainedTokenizerFast
        >>> words = "[UNK] When Mary John and , gave a book to".split()
        >>> word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, "[UNK]"))
        >>> word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        >>> tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, unk_token="[UNK]")
        >>> pairs = PromptPairs.from_strings(
        ...     ["When Mary and John , John gave a book to", "When John and Mary , Mary gave a book to"],
        ...     ["When John and Mary , Mary gave a book to", "When Mary and John , John gave a book to"],
        ...     [" Mary", " John"],
        ...     [" John", " Mary"],
        ...     tokenizer=tokenizer,
        ...     roles={"IO": [1, 1], "S2": [5, 5]},
        ... )
        >>> pairs.position_labels
        ('When', 'IO', 'and', "'John'|'Mary'", ',', 'S2', 'gave', 'a', 'book', 'to')
        >>> pairs.to_pair().clean_answer.tolist()
        [2, 3]
        """
        check_tokenizer(tokenizer)
        columns = prompt_columns(clean, corrupted, clean_answer, corrupted_answer)
        texts: list[PromptText] = []
        rows: list[PromptRow] = []
        for i in range(len(clean)):
            where = f"row {i}"
            text = PromptText(
                **{
                    name: as_text(column[i], where=where, column=name)
                    for name, column in columns.items()
                }
            )
            texts.append(text)
            rows.append(
                tokenize_row(text, tokenizer, where=where, add_special_tokens=add_special_tokens)
            )
        return cls.from_rows(rows, tokenizer=tokenizer, labels=labels, roles=roles, texts=texts)

    @classmethod
    @shape_checked
    def from_token_ids(
        cls,
        clean: Sequence[Sequence[int]] | Int[Tensor, "batch pos"],
        corrupted: Sequence[Sequence[int]] | Int[Tensor, "batch pos"],
        clean_answer: Sequence[int | Sequence[int]] | Int[Tensor, " batch ..."],
        corrupted_answer: Sequence[int | Sequence[int]] | Int[Tensor, " batch ..."],
        *,
        tokenizer: Any | None = None,
        vocab_size: int | None = None,
        labels: Mapping[str, Sequence[LabelValue]] | None = None,
        roles: Mapping[str, Sequence[int]] | None = None,
    ) -> PromptPairs:
        """Pairs from token ids: prompts [n, pos]; answers [n] (one token each) or a
        sequence of token lists (several tokens each). A tokenizer, if given, only
        names the tokens and catches unknown ones; `vocab_size` bounds the ids."""
        columns = prompt_columns(clean, corrupted, clean_answer, corrupted_answer)
        if tokenizer is not None:
            check_tokenizer(tokenizer)
        rows = [
            PromptRow(
                **{
                    name: token_ids(column[i], where=f"row {i}", column=name)
                    for name, column in columns.items()
                },
                where=f"row {i}",
            )
            for i in range(len(columns["clean"]))
        ]
        return cls.from_rows(
            rows, tokenizer=tokenizer, labels=labels, roles=roles, vocab_size=vocab_size
        )

    # ---- shape and names ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def prompt_len(self) -> int:
        """Tokens in every prompt; the answer is predicted at position prompt_len - 1."""
        return len(self.rows[0].clean)

    @property
    def is_multi_token(self) -> bool:
        """Whether any answer has more than one token (see `to_pair`)."""
        return any(len(r.clean_answer) > 1 or len(r.corrupted_answer) > 1 for r in self.rows)

    @property
    def answer_len(self) -> int:
        """Tokens in the longest answer."""
        return max(max(len(r.clean_answer), len(r.corrupted_answer)) for r in self.rows)

    @property
    def seq_len(self) -> int:
        """Length of the model inputs `to_pair` gives: the prompt, then every answer
        token but the last when answers have several."""
        return self.prompt_len + self.answer_len - 1

    @property
    def position_labels(self) -> tuple[str, ...]:
        """A name for every input position (see `mesainterp.prompts.positions`); the
        appended answer tokens of multi-token pairs read "answer[0]", "answer[1]", …"""
        prompt = [position_label(p, self.tokens, self.roles) for p in range(self.prompt_len)]
        appended = [f"answer[{k}]" for k in range(self.answer_len - 1)]
        return tuple(prompt + appended)

    def labels_for(self, positions: Sequence[int | None]) -> list[str]:
        """Position labels for a list of positions (e.g. the `pos` of patched sites).

        >>> pairs = PromptPairs.from_token_ids([[3, 4]], [[3, 5]], [1], [2], roles={"X": [1]})
        >>> pairs.labels_for([0, -1, None])
        ['3', 'X', 'all']
        """
        return label_positions(self.position_labels, positions)

    @property
    def changed_positions(self) -> tuple[int, ...]:
        """Prompt positions where some row's clean and corrupted tokens differ."""
        return tuple(
            p
            for p in range(self.prompt_len)
            if any(r.clean[p] != r.corrupted[p] for r in self.rows)
        )

    # ---- the toolkit's pair -------------------------------------------------------

    def to_pair(self, family: str = "prompts") -> CounterfactualPair:
        """The pair patching, attribution, discovery and probes take.

        `answer_pos` is the last prompt position. With one-token answers there is one
        row per example and the inputs are the prompts. With multi-token answers
        each example gives two rows, both halves of the pair continuing the prompt
        with the same answer, teacher-forced: row 2i with the clean answer, row
        2i + 1 with the corrupted one (every answer token but the last appended to
        the prompt; shorter continuations are followed by token 0, which no scored
        position can see). `targets` hold the answer tokens at the positions that
        predict them; labels `example` and `answer_sign` (+1 clean, -1 corrupted)
        say which example and which answer a row carries. Numeric label columns and
        roles are labels too, repeated per row.
        """
        if self.is_multi_token:
            return self._teacher_forced_pair(family)
        answer_pos = torch.full((len(self),), self.prompt_len - 1, dtype=torch.long)
        clean_answer = torch.tensor([r.clean_answer[0] for r in self.rows])
        corrupted_answer = torch.tensor([r.corrupted_answer[0] for r in self.rows])
        labels = self._tensor_labels(list(range(len(self))))
        return CounterfactualPair(
            family=family,
            clean=self._batch([r.clean for r in self.rows], clean_answer, labels),
            corrupted=self._batch([r.corrupted for r in self.rows], corrupted_answer, labels),
            answer_pos=answer_pos,
            clean_answer=clean_answer,
            corrupted_answer=corrupted_answer,
        )

    def default_metric(self, pair: CounterfactualPair | None = None) -> Metric:
        """`metric(logits, batch)` for `pair` (default: `self.to_pair()`), higher = more
        clean-like: the logit difference of the answers at `answer_pos` for one-token
        answers, their teacher-forced log-probability difference for multi-token ones
        (`mesainterp.prompts.metrics`). Build it from a sliced pair to score the slice."""
        return default_metric(self.to_pair() if pair is None else pair)

    def _batch(
        self, prompts: list[tuple[int, ...]], answer: Tensor, labels: dict[str, Tensor]
    ) -> TaskBatch:
        inputs = torch.tensor(prompts, dtype=torch.long)
        targets = torch.full_like(inputs, IGNORE_INDEX)
        targets[:, -1] = answer
        return TaskBatch(
            inputs=inputs,
            targets=targets,
            prompt_len=self.prompt_len,
            labels=dict(labels),
            instances=self._instances(list(range(len(self)))),
        )

    def _teacher_forced_pair(self, family: str) -> CounterfactualPair:
        examples = [i for i in range(len(self)) for _ in (0, 1)]
        answers = [answer for r in self.rows for answer in (r.clean_answer, r.corrupted_answer)]
        start = self.prompt_len - 1
        targets = torch.full((len(examples), self.seq_len), IGNORE_INDEX, dtype=torch.long)
        tails = torch.full((len(examples), self.answer_len - 1), _FILL, dtype=torch.long)
        for row, answer in enumerate(answers):
            targets[row, start : start + len(answer)] = torch.tensor(answer)
            tails[row, : len(answer) - 1] = torch.tensor(answer[:-1], dtype=torch.long)
        labels = self._tensor_labels(examples)
        labels[ANSWER_SIGN] = torch.tensor([1.0, -1.0] * len(self))

        def half(prompts: list[tuple[int, ...]]) -> TaskBatch:
            inputs = torch.tensor([prompts[i] for i in examples], dtype=torch.long)
            return TaskBatch(
                inputs=torch.cat([inputs, tails], dim=1),
                targets=targets.clone(),
                prompt_len=self.prompt_len,
                labels=dict(labels),
                instances=self._instances(examples),
            )

        return CounterfactualPair(
            family=family,
            clean=half([r.clean for r in self.rows]),
            corrupted=half([r.corrupted for r in self.rows]),
            answer_pos=torch.full((len(examples),), start, dtype=torch.long),
            clean_answer=torch.tensor([self.rows[i].clean_answer[0] for i in examples]),
            corrupted_answer=torch.tensor([self.rows[i].corrupted_answer[0] for i in examples]),
        )

    def _tensor_labels(self, examples: list[int]) -> dict[str, Tensor]:
        """Roles and numeric label columns as [rows] tensors; text labels stay in `labels`."""
        out: dict[str, Tensor] = {EXAMPLE: torch.tensor(examples, dtype=torch.long)}
        for name, positions in self.roles.items():
            out[name] = torch.tensor([positions[i] for i in examples], dtype=torch.long)
        for name, values in self.labels.items():
            column = [values[i] for i in examples]
            if all(isinstance(v, bool) for v in column):
                out[name] = torch.tensor(column, dtype=torch.bool)
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in column):
                out[name] = torch.tensor(column, dtype=torch.long)
            elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in column):
                out[name] = torch.tensor(column, dtype=torch.float)
        return out

    def _instances(self, examples: list[int]) -> list[Any]:
        source: Sequence[Any] = self.texts if self.texts is not None else self.rows
        return [source[i] for i in examples]


def _vocab_size(tokenizer: Any | None) -> int | None:
    return None if tokenizer is None else vocab_size(tokenizer)
