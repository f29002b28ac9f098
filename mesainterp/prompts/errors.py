"""The one error a prompt dataset raises: it names the row (and file line) and the column."""

from __future__ import annotations

from mesainterp.errors import MesaInterpError

__all__ = ["PromptError"]


class PromptError(MesaInterpError):
    """A prompt row is malformed or cannot be aligned with the others.

    `where` is "row 3" for rows given in memory (0-based, as in the dataset) or
    "prompts.csv line 5 (row 3)" for rows read from a file.
    """

    def __init__(self, where: str, column: str | None, problem: str) -> None:
        self.where = where
        self.column = column
        place = where if column is None else f"{where}, column {column!r}"
        super().__init__(f"{place}: {problem}")
