"""Names for token positions, for tables, figures and reports.

A position is named by the user's roles that sit there in every row ("S2", "END"),
else by its token when every row has the same one (" gave"), else by the tokens the
rows have there, first two in row order ("' Mary'|' John'|…"), so a label never
pretends rows agree where they do not.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

import pandas as pd

from mesainterp.errors import ConfigError

__all__ = ["label_positions", "position_label"]

# Distinct tokens shown for a position where rows differ.
_SHOWN = 2


def position_label(
    pos: int, tokens: Sequence[Sequence[str]], roles: Mapping[str, Sequence[int]]
) -> str:
    """The label of prompt position `pos` (see the module docstring).

    tokens: each row's token strings; roles: role name -> position in each row.
    """
    here = [name for name, where in roles.items() if all(p == pos for p in where)]
    if here:
        return "/".join(here)
    seen: list[str] = []
    for row in tokens:
        if row[pos] not in seen:
            seen.append(row[pos])
    if len(seen) == 1:
        return seen[0]
    shown = "|".join(repr(t) for t in seen[:_SHOWN])
    return shown + ("|…" if len(seen) > _SHOWN else "")


def label_positions(labels: Sequence[str], positions: Sequence[int | None]) -> list[str]:
    """`labels[p]` for each position; negative positions count from the end and None
    or pandas' NA (a site over all positions, as in a patching table's `position`
    column) reads "all"."""
    n = len(labels)
    out: list[str] = []
    for pos in positions:
        if pos is None or pos is pd.NA:  # pd.NA: a results table's all-positions row
            out.append("all")
            continue
        try:
            index = operator.index(pos)  # ints, numpy and 0-d torch ints; not floats or bools
        except TypeError:
            index = n  # refused below
        if isinstance(pos, bool) or not -n <= index < n:
            raise ConfigError("positions", f"got {pos!r}", f"ints in [{-n}, {n}) or None")
        out.append(labels[index])
    return out
