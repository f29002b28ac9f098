"""The frozen, validated shape of a mesainterp model.

`ModelConfig` is the only way the toolkit describes a model it builds itself; it
turns into a TransformerLens `TransformerBridgeConfig` at the last moment, so
TransformerLens's many sentinel-valued fields never leak into our files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from mesainterp.errors import ConfigError, allowed

__all__ = ["ActFn", "ModelConfig", "Normalization", "PositionalEmbedding"]

ActFn = Literal["gelu", "gelu_new", "relu", "silu"]
Normalization = Literal["LN", "LNPre", "RMS", "RMSPre"]
PositionalEmbedding = Literal["standard", "rotary"]


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of a small decoder-only transformer, validated at construction.

    >>> config = mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0)
    >>> config.act_fn, config.normalization_type, config.attn_only
    ('gelu', 'LN', False)
    >>> mesainterp.ModelConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_vocab=11, n_ctx=8)
    Traceback (most recent call last):
    ...
    mesainterp.errors.ConfigError: d_mlp: required unless attn_only is true (allowed: a positive int)
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_vocab: int
    n_ctx: int
    d_mlp: int | None = None
    attn_only: bool = False
    act_fn: ActFn = "gelu"
    normalization_type: Normalization | None = "LN"
    positional_embedding_type: PositionalEmbedding = "standard"
    d_vocab_out: int | None = None
    n_kv_heads: int | None = None  # grouped-query attention: key/value heads (default n_heads)
    gated_mlp: bool = False  # SwiGLU-style MLP: act(x W_gate) * (x W_in), then W_out
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_vocab", "n_ctx"):
            _require_positive_int(name, getattr(self, name))
        if not self.attn_only:
            if self.d_mlp is None:
                raise ConfigError("d_mlp", "required unless attn_only is true", "a positive int")
            _require_positive_int("d_mlp", self.d_mlp)
        elif self.d_mlp is not None:
            raise ConfigError("d_mlp", "must be null for an attention-only model", "null")
        if self.d_vocab_out is not None:
            _require_positive_int("d_vocab_out", self.d_vocab_out)
        if self.n_kv_heads is not None:
            _require_positive_int("n_kv_heads", self.n_kv_heads)
            if self.n_heads % self.n_kv_heads != 0:
                raise ConfigError(
                    "n_kv_heads",
                    f"got {self.n_kv_heads}, must divide n_heads ({self.n_heads})",
                    "a positive divisor of n_heads",
                )
        if not isinstance(self.gated_mlp, bool):
            raise ConfigError(
                "gated_mlp", f"expected a bool, got {self.gated_mlp!r}", "true, false"
            )
        if self.gated_mlp and self.attn_only:
            raise ConfigError("gated_mlp", "an attention-only model has no MLP", "false")
        _require_choice("act_fn", self.act_fn, get_args(ActFn))
        if self.normalization_type is not None:
            _require_choice("normalization_type", self.normalization_type, get_args(Normalization))
        _require_choice(
            "positional_embedding_type",
            self.positional_embedding_type,
            get_args(PositionalEmbedding),
        )
        if isinstance(self.attn_only, bool) is False:
            raise ConfigError(
                "attn_only", f"expected a bool, got {self.attn_only!r}", "true, false"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError("seed", f"expected a non-negative int, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "model") -> ModelConfig:
        """Build from a JSON/TOML mapping; unknown or missing fields are named."""
        if not isinstance(data, dict):
            raise ConfigError(where, f"expected a table, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown field", allowed(sorted(fields)))
        required = [
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        for name in required:
            if name not in data:
                raise ConfigError(f"{where}.{name}", "missing required field")
        try:
            return cls(**data)
        except ConfigError as err:
            raise ConfigError(f"{where}.{err.field}", str(err).split(": ", 1)[1]) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_bridge_dict(self) -> dict[str, Any]:
        """The fields TransformerLens's `TransformerBridgeConfig` takes."""
        out: dict[str, Any] = {
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "n_heads": self.n_heads,
            "d_head": self.d_head,
            "d_vocab": self.d_vocab,
            "n_ctx": self.n_ctx,
            "attn_only": self.attn_only,
            "act_fn": self.act_fn,
            "normalization_type": self.normalization_type,
            "positional_embedding_type": self.positional_embedding_type,
            "seed": self.seed,
        }
        if self.d_mlp is not None:
            out["d_mlp"] = self.d_mlp
        if self.d_vocab_out is not None:
            out["d_vocab_out"] = self.d_vocab_out
        # Only when set, so configs written before these fields map exactly as they did.
        if self.n_kv_heads is not None:
            out["n_key_value_heads"] = self.n_kv_heads
        if self.gated_mlp:
            out["gated_mlp"] = True
        return out

    @property
    def n_params_estimate(self) -> int:
        kv = self.n_kv_heads or self.n_heads
        attn = (2 * self.n_heads + 2 * kv) * self.d_model * self.d_head
        mlp = 0 if self.d_mlp is None else (3 if self.gated_mlp else 2) * self.d_model * self.d_mlp
        vocab_out = self.d_vocab_out or self.d_vocab
        embed = (self.d_vocab + self.n_ctx + vocab_out) * self.d_model
        return self.n_layers * (attn + mlp) + embed


def _require_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(name, f"expected a positive int, got {value!r}")


def _require_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, f"got {value!r}", allowed(choices))
