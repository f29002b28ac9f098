"""Build TransformerLens-native models and describe any bridge a user brings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.model.config import ModelConfig

__all__ = ["ModelShape", "build_model", "model_shape", "random_init_twin"]


def build_model(
    config: ModelConfig,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> TransformerBridge:
    """A `TransformerBridge` around a freshly initialised native model (seeded by
    `config.seed`), in eval mode."""
    # boot_native is attached to the class at import time, so type checkers cannot see it.
    bridge = TransformerBridge.boot_native(  # type: ignore[attr-defined]
        config.to_bridge_dict(), device=device, dtype=dtype, model_name="mesainterp-native"
    )
    bridge.eval()
    return bridge


def random_init_twin(config: ModelConfig, *, seed: int | None = None) -> TransformerBridge:
    """Same architecture, random weights: the standard negative control.

    The seed defaults to the config's own seed plus one, so the twin is never
    accidentally the starting point of the trained model's run.
    """
    twin_seed = config.seed + 1 if seed is None else seed
    fields = config.to_dict() | {"seed": twin_seed}
    return build_model(ModelConfig(**fields))


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """What an analysis needs to know about a bridge, whoever built it."""

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    n_ctx: int
    d_vocab: int
    d_vocab_out: int
    attn_only: bool


def model_shape(model: TransformerBridge) -> ModelShape:
    """Read the shape of any `TransformerBridge` (native or booted from HuggingFace)."""
    if not isinstance(model, TransformerBridge):
        raise MesaInterpError(
            f"expected a transformer_lens TransformerBridge, got {type(model).__name__}"
        )
    cfg = model.cfg
    d_vocab_out = cfg.d_vocab_out if cfg.d_vocab_out and cfg.d_vocab_out > 0 else cfg.d_vocab
    return ModelShape(
        n_layers=int(cfg.n_layers),
        n_heads=int(cfg.n_heads),
        d_model=int(cfg.d_model),
        d_head=int(cfg.d_head),
        n_ctx=int(cfg.n_ctx),
        d_vocab=int(cfg.d_vocab),
        d_vocab_out=int(d_vocab_out),
        attn_only=bool(cfg.attn_only),
    )
