"""What a subcommand returns: data for `--json`, text for people."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["CommandResult", "to_json"]


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """A subcommand's outcome: `data` is printed as one JSON line under `--json`,
    `text` otherwise."""

    data: dict[str, Any]
    text: str


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)
