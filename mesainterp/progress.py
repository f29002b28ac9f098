"""Progress bars for every long loop, one switch to turn them all off.

Bars are `tqdm.auto` (a widget in Jupyter, text in a terminal) and go to stderr.
They are on unless the caller passes `progress=False` or the environment sets
MESAINTERP_NO_PROGRESS=1 (what `mesainterp --no-progress` does), so batch logs
stay clean without threading a flag through every call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress_bar", "progress_enabled"]

T = TypeVar("T")

_OFF_VALUES = ("1", "true", "yes")


def progress_enabled(progress: bool | None) -> bool:
    """An explicit argument wins; otherwise on unless MESAINTERP_NO_PROGRESS is set."""
    if progress is not None:
        return progress
    return os.environ.get("MESAINTERP_NO_PROGRESS", "").lower() not in _OFF_VALUES


def progress_bar(
    items: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    progress: bool | None = None,
) -> Iterator[T]:
    """`items`, with a bar when progress is enabled (tqdm is imported only then)."""
    if not progress_enabled(progress):
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, leave=False)
