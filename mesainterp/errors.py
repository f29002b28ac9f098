"""Errors that name what was wrong and what is allowed.

Every user-facing refusal in mesainterp is a `MesaInterpError` (a `ValueError`),
so the CLI can print it as one line and exit non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CheckpointError", "ConfigError", "MesaInterpError", "allowed"]


class MesaInterpError(ValueError):
    """Bad input, refused before any expensive work."""


class ConfigError(MesaInterpError):
    """A config field is missing, of the wrong type, or out of range."""

    def __init__(self, field: str, problem: str, allowed_values: str | None = None) -> None:
        self.field = field
        message = f"{field}: {problem}"
        if allowed_values:
            message += f" (allowed: {allowed_values})"
        super().__init__(message)


class CheckpointError(MesaInterpError):
    """A checkpoint is missing, malformed, or of a schema this version cannot read."""


def allowed(values: Iterable[object]) -> str:
    """Format a set of allowed values for an error message."""
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)
