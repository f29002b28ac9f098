"""One prompt pair: its text (if it came from text), its token ids, and the per-row checks.

A row is refused here, naming the row and the column, when it could not be scored
faithfully: an empty prompt or answer, a token the tokenizer does not know, an id
outside the vocabulary, clean and corrupted prompts of different token lengths (their
positions would not line up), or an answer whose text merges with the end of the
prompt (the prompt's own tokens change once the answer follows it, so the answer the
model would see is not the one scored). Across rows, every prompt must be as long as
row 0's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mesainterp.prompts.errors import PromptError
from mesainterp.prompts.tokenizer import encode, token_strings, unknown_token_id

__all__ = [
    "PROMPT_COLUMNS",
    "PromptRow",
    "PromptText",
    "as_text",
    "check_one_length",
    "check_row",
    "tokenize_row",
]

# The four columns every row has, in file order.
PROMPT_COLUMNS = ("clean", "corrupted", "clean_answer", "corrupted_answer")


@dataclass(frozen=True, kw_only=True)
class PromptText:
    """The strings a row was built from (kept so the dataset can be saved as text)."""

    clean: str
    corrupted: str
    clean_answer: str
    corrupted_answer: str


@dataclass(frozen=True, kw_only=True)
class PromptRow:
    """Token ids of one pair. Answers are continuations of the prompt, one or more tokens."""

    clean: tuple[int, ...]
    corrupted: tuple[int, ...]
    clean_answer: tuple[int, ...]
    corrupted_answer: tuple[int, ...]
    where: str = field(compare=False)  # where the row came from, for errors

    def column(self, name: str) -> tuple[int, ...]:
        value: tuple[int, ...] = getattr(self, name)
        return value


def as_text(value: object, *, where: str, column: str) -> str:
    """A prompt or answer cell that must be text."""
    if not isinstance(value, str):
        raise PromptError(where, column, f"expected text, got {value!r}")
    return value


def _show(tokenizer: Any, ids: Sequence[int]) -> str:
    return repr(token_strings(tokenizer, ids))


def _answer_ids(
    tokenizer: Any, prompt: str, answer: str, *, where: str, column: str
) -> tuple[int, ...]:
    """The answer's tokens as the model sees them right after the prompt.

    Encoding the answer alone can differ from encoding it in place (SentencePiece adds
    a word-start marker; BPE merges across a missing space), so the answer tokens are
    read off the end of `prompt + answer`, once the prompt's own tokens are known to
    be unchanged by what follows them.
    """
    alone = encode(tokenizer, prompt, special=False)
    joined = encode(tokenizer, prompt + answer, special=False)
    if joined[: len(alone)] != alone:
        raise PromptError(
            where,
            column,
            f"{answer!r} merges with the end of the prompt: the prompt ends in "
            f"{_show(tokenizer, alone[-2:])} alone but {_show(tokenizer, joined[len(alone) - 2 :])}"
            " with the answer after it (start the answer at a token boundary, often with a space)",
        )
    return tuple(joined[len(alone) :])


def _prompt_ids(tokenizer: Any, text: str, *, special: bool, where: str, column: str) -> list[int]:
    ids = encode(tokenizer, text, special=special)
    if special and ids[-1:] != encode(tokenizer, text, special=False)[-1:]:
        raise PromptError(
            where,
            column,
            f"the tokenizer appends {_show(tokenizer, ids[-1:])} after the prompt, so the "
            "answer would not follow it; pass add_special_tokens=False",
        )
    return ids


def tokenize_row(
    text: PromptText, tokenizer: Any, *, where: str, add_special_tokens: bool = True
) -> PromptRow:
    """Token ids of a text row; every refusal names `where` and the column."""
    for column in PROMPT_COLUMNS:
        if not getattr(text, column).strip():
            raise PromptError(where, column, "empty text")
    return PromptRow(
        clean=tuple(
            _prompt_ids(
                tokenizer, text.clean, special=add_special_tokens, where=where, column="clean"
            )
        ),
        corrupted=tuple(
            _prompt_ids(
                tokenizer,
                text.corrupted,
                special=add_special_tokens,
                where=where,
                column="corrupted",
            )
        ),
        clean_answer=_answer_ids(
            tokenizer, text.clean, text.clean_answer, where=where, column="clean_answer"
        ),
        corrupted_answer=_answer_ids(
            tokenizer, text.corrupted, text.corrupted_answer, where=where, column="corrupted_answer"
        ),
        where=where,
    )


def check_row(row: PromptRow, *, tokenizer: Any | None, vocab_size: int | None) -> None:
    """Refuse a row that cannot be scored faithfully (see the module docstring)."""
    unk = unknown_token_id(tokenizer)
    for column in PROMPT_COLUMNS:
        ids = row.column(column)
        if not ids:
            raise PromptError(row.where, column, "no tokens")
        bad = [i for i in ids if i < 0 or (vocab_size is not None and i >= vocab_size)]
        if bad:
            allowed = "non-negative ids" if vocab_size is None else f"ids 0..{vocab_size - 1}"
            raise PromptError(row.where, column, f"token id {bad[0]} out of range ({allowed})")
        if unk is not None and unk in ids:
            at = ids.index(unk)
            raise PromptError(
                row.where,
                column,
                f"token {at} is the unknown token {_show(tokenizer, [unk])}: the tokenizer "
                "cannot represent this text",
            )
    if len(row.clean) != len(row.corrupted):
        raise PromptError(
            row.where,
            "corrupted",
            f"{len(row.corrupted)} tokens but the clean prompt has {len(row.clean)}, so their "
            f"positions do not line up (clean {_show(tokenizer, row.clean)}, "
            f"corrupted {_show(tokenizer, row.corrupted)})",
        )


def check_one_length(rows: Sequence[PromptRow], *, tokenizer: Any | None) -> None:
    """Refuse the first row whose prompts are not as long as row 0's: a batch has one
    length, and pads would be attended to (these models run without an attention mask)."""
    first = rows[0]
    for row in rows[1:]:
        if len(row.clean) != len(first.clean):
            raise PromptError(
                row.where,
                "clean",
                f"{len(row.clean)} tokens {_show(tokenizer, row.clean)} but "
                f"{first.where} has {len(first.clean)}; a batch needs one prompt length "
                "(pads would be attended to, so prompts of another length go in their own dataset)",
            )
