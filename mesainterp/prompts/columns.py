"""The columns a user gives, checked: prompts and answers, label columns, role positions.

Every refusal names the column, and the row where one row is at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from mesainterp.errors import ConfigError, allowed
from mesainterp.prompts.errors import PromptError
from mesainterp.prompts.metrics import ANSWER_SIGN
from mesainterp.prompts.rows import PROMPT_COLUMNS, PromptRow

__all__ = [
    "EXAMPLE",
    "LabelValue",
    "checked_labels",
    "checked_roles",
    "prompt_columns",
    "token_ids",
]

LabelValue = str | int | float | bool | None
# The TaskBatch label holding each row's example index (rows repeat for multi-token answers).
EXAMPLE = "example"
_RESERVED = (*PROMPT_COLUMNS, EXAMPLE, ANSWER_SIGN)


def prompt_columns(*columns: Sequence[Any] | Tensor) -> dict[str, Sequence[Any] | Tensor]:
    """The four prompt columns by name, refused unless they have one entry per row."""
    n = len(columns[0])
    for name, column in zip(PROMPT_COLUMNS, columns, strict=True):
        if len(column) != n:
            raise ConfigError(name, f"{len(column)} entries but 'clean' has {n}")
    return dict(zip(PROMPT_COLUMNS, columns, strict=True))


def token_ids(value: Any, *, where: str, column: str) -> tuple[int, ...]:
    """One prompt or answer as a tuple of ints (an int alone is a one-token answer)."""
    if isinstance(value, Tensor):
        value = value.tolist()
    items = [value] if isinstance(value, int) else value
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise PromptError(where, column, f"expected token ids, got {type(value).__name__}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise PromptError(where, column, f"expected int token ids, got {item!r}")
    return tuple(items)


def checked_labels(
    labels: Mapping[str, Sequence[LabelValue]], n: int
) -> dict[str, tuple[LabelValue, ...]]:
    out: dict[str, tuple[LabelValue, ...]] = {}
    for name, values in labels.items():
        if name in _RESERVED:
            raise ConfigError(
                f"labels.{name}", "reserved name", f"any name but {allowed(_RESERVED)}"
            )
        if len(values) != n:
            raise ConfigError(f"labels.{name}", f"{len(values)} values for {n} rows")
        out[name] = tuple(values)
    return out


def checked_roles(
    roles: Mapping[str, Sequence[int]], rows: Sequence[PromptRow]
) -> dict[str, tuple[int, ...]]:
    """Role positions, negative ones counted from the end, checked against each row."""
    n_pos = len(rows[0].clean)
    out: dict[str, tuple[int, ...]] = {}
    for name, positions in roles.items():
        if name in _RESERVED:
            raise ConfigError(
                f"roles.{name}", "reserved name", f"any name but {allowed(_RESERVED)}"
            )
        if len(positions) != len(rows):
            raise ConfigError(f"roles.{name}", f"{len(positions)} positions for {len(rows)} rows")
        normal: list[int] = []
        for row, pos in zip(rows, positions, strict=True):
            if isinstance(pos, bool) or not isinstance(pos, int) or not -n_pos <= pos < n_pos:
                raise PromptError(
                    row.where,
                    name,
                    f"role position {pos!r} is not a token position "
                    f"(ints in [{-n_pos}, {n_pos}), negative counting from the end)",
                )
            normal.append(pos % n_pos)
        out[name] = tuple(normal)
    return out
