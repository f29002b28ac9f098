"""Errors that name what was wrong and what is allowed.

Every user-facing refusal in mesainterp is a `MesaInterpError` (a `ValueError`),
so the CLI can print it as one line and exit non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CheckpointError", "ConfigError", "MesaInterpError", "allowed"]


class MesaInterpError(ValueError):
    """Bad input, refused before any expensive work.

    >>> try:
    ...     mesainterp.model_shape(torch.nn.Linear(2, 2))
    ... except mesainterp.MesaInterpError as err:
    ...     print(f"{type(err).__name__}: {err}")
    MesaInterpError: expected a transformer_lens TransformerBridge, got Linear
    >>> issubclass(mesainterp.MesaInterpError, ValueError)  # one line, non-zero exit in the CLI
    True
    """


class ConfigError(MesaInterpError):
    """A config field is missing, of the wrong type, or out of range.

    >>> try:
    ...     mesainterp.ModelConfig(n_layers=0, d_model=16, n_heads=2, d_head=8, d_vocab=11, n_ctx=8)
    ... except mesainterp.ConfigError as err:
    ...     print(err.field, "|", err)
    n_layers | n_layers: ...
    """

    def __init__(self, field: str, problem: str, allowed_values: str | None = None) -> None:
        self.field = field
        message = f"{field}: {problem}"
        if allowed_values:
            message += f" (allowed: {allowed_values})"
        super().__init__(message)


class CheckpointError(MesaInterpError):
    """A checkpoint is missing, malformed, or of a schema this version cannot read.

    >>> import tempfile
    >>> try:
    ...     mesainterp.model.load_checkpoint(tempfile.mkdtemp())
    ... except mesainterp.CheckpointError as err:
    ...     print(str(err).split(": ", 1)[1])
    missing config.json
    """


def allowed(values: Iterable[object]) -> str:
    """Format a set of allowed values for an error message."""
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)
