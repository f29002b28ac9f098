"""A budget for long searches: at most so many runs and/or seconds in one call.

A search that meets its budget stops between two runs and returns what it has,
marked `status="partial"`; with a checkpoint it continues from there on the next
call, which gets a fresh budget (the budget bounds one call, not the whole search,
so a search can be run an hour at a time). A run here is one forward the search
pays for: an ACDC trial, a top-n faithfulness measurement, an attribution chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from mesainterp.errors import ConfigError

__all__ = ["COMPLETE", "PARTIAL", "Budget", "BudgetClock", "Status"]

Status = Literal["complete", "partial"]
COMPLETE: Status = "complete"
PARTIAL: Status = "partial"


@dataclass(frozen=True, kw_only=True)
class Budget:
    """At most `max_runs` runs and `max_seconds` seconds per call (None: no limit).

    >>> from mesainterp.discovery.budget import Budget
    >>> clock = Budget(max_runs=2).start()
    >>> clock.charge(); clock.spent()
    False
    >>> clock.charge(); clock.spent(), clock.reason()
    (True, 'max_runs=2 reached')
    """

    max_runs: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_runs is not None and (
            isinstance(self.max_runs, bool)
            or not isinstance(self.max_runs, int)
            or self.max_runs < 1
        ):
            raise ConfigError("max_runs", f"got {self.max_runs!r}", "an int >= 1, or None")
        if self.max_seconds is not None and (
            isinstance(self.max_seconds, bool)
            or not isinstance(self.max_seconds, int | float)
            or not self.max_seconds > 0
        ):
            raise ConfigError("max_seconds", f"got {self.max_seconds!r}", "a number > 0, or None")

    @property
    def limited(self) -> bool:
        return self.max_runs is not None or self.max_seconds is not None

    def start(self) -> BudgetClock:
        """A clock counting this call's runs and seconds from now."""
        return BudgetClock(self)

    def to_dict(self) -> dict[str, Any]:
        return {"max_runs": self.max_runs, "max_seconds": self.max_seconds}


class BudgetClock:
    """The runs charged and seconds passed since `Budget.start`."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.runs = 0
        self._t0 = time.monotonic()

    def charge(self, n: int = 1) -> None:
        self.runs += n

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._t0

    def spent(self) -> bool:
        """Whether another run would exceed the budget."""
        b = self.budget
        return (b.max_runs is not None and self.runs >= b.max_runs) or (
            b.max_seconds is not None and self.seconds >= b.max_seconds
        )

    def reason(self) -> str:
        b = self.budget
        if b.max_runs is not None and self.runs >= b.max_runs:
            return f"max_runs={b.max_runs} reached"
        return f"max_seconds={b.max_seconds} reached"
