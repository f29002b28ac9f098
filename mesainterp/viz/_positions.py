"""Position labels: the index, the token there and the role the user named.

Figures never show a bare index where the caller knows more: position 5 of an
IOI prompt reads "5:Mary (IO)" when the tokens and roles are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["PositionRoles", "position_label", "split_columns"]

# A role per position: a sequence indexed by position ("" for none) or a mapping.
PositionRoles = Mapping[int, str] | Sequence[str]

ALL_POSITIONS = -1  # a site patched at every position at once


def position_label(
    pos: int, tokens: Sequence[str] | None = None, roles: PositionRoles | None = None
) -> str:
    """ "pos", "pos:token", "pos (role)" or "pos:token (role)"; "all" for every position."""
    if pos == ALL_POSITIONS:
        return "all"
    text = str(pos)
    if tokens is not None and 0 <= pos < len(tokens):
        text = f"{pos}:{tokens[pos]}"
    role = ""
    if isinstance(roles, Mapping):
        role = str(roles.get(pos, ""))
    elif roles is not None and 0 <= pos < len(roles):
        role = str(roles[pos])
    return f"{text} ({role})" if role else text


def split_columns(n: int, max_columns: int) -> list[range]:
    """Consecutive column ranges of at most `max_columns` covering all n columns:
    a long sequence becomes several panels, never a cut."""
    return [range(start, min(start + max_columns, n)) for start in range(0, n, max_columns)]
