"""A run plan: deterministic work units with stable keys.

A unit is a JSON-able payload (e.g. the start and stop of a chunk of sites) and a
key derived from its position and content. The same command with the same config
always yields the same units and keys, so a resumed run can tell which results
it already has; a changed chunk gets a new key and is recomputed, never mixed up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mesainterp.errors import ConfigError

__all__ = ["RunPlan", "WorkUnit", "chunk_plan", "stable_hash"]


def stable_hash(obj: Any, length: int = 12) -> str:
    """sha256 of the canonical JSON of `obj`, shortened."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True, kw_only=True)
class WorkUnit:
    """One independently computable piece of a run."""

    key: str
    index: int
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key or not all(c.isalnum() or c in "-_" for c in self.key):
            raise ConfigError("key", f"got {self.key!r}", "letters, digits, '-' and '_'")
        if self.index < 0:
            raise ConfigError("index", f"expected an int >= 0, got {self.index}")


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """The ordered units of a run; results are assembled in this order."""

    units: tuple[WorkUnit, ...]

    def __post_init__(self) -> None:
        keys = [u.key for u in self.units]
        if len(set(keys)) != len(keys):
            raise ConfigError("units", "unit keys must be unique")

    def __len__(self) -> int:
        return len(self.units)

    @property
    def keys(self) -> list[str]:
        return [u.key for u in self.units]


def chunk_plan(
    prefix: str, items: Sequence[Any], chunk_size: int, *, context: Any = None
) -> RunPlan:
    """Units over `items` in chunks of `chunk_size`; payload {"start", "stop"}.

    The key hashes the chunk's items (their JSON form) and `context`, so it changes
    whenever what the unit computes changes.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError("chunk_size", f"expected an int >= 1, got {chunk_size!r}")
    units = []
    for index, start in enumerate(range(0, len(items), chunk_size)):
        stop = min(start + chunk_size, len(items))
        digest = stable_hash({"items": list(items[start:stop]), "context": context})
        units.append(
            WorkUnit(
                key=f"{prefix}-{start:05d}-{stop:05d}-{digest}",
                index=index,
                payload={"start": start, "stop": stop},
            )
        )
    return RunPlan(units=tuple(units))
