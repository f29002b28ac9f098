"""Build TransformerLens-native models, and their random-init twins for any bridge.

`ModelShape` / `model_shape` (what an analysis needs to know about any bridge) live in
`mesainterp.model.shape` and are re-exported here.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.model.config import ModelConfig
from mesainterp.model.shape import ModelShape, model_shape, model_source

__all__ = ["ModelShape", "build_model", "model_shape", "random_init_twin"]


def build_model(
    config: ModelConfig,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> TransformerBridge:
    """A `TransformerBridge` around a freshly initialised native model (seeded by
    `config.seed`), in eval mode.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> type(model).__name__, model.training
    ('TransformerBridge', False)
    >>> model(torch.tensor([[1, 2, 3]])).shape  # logits: batch, pos, d_vocab
    torch.Size([1, 3, 11])
    """
    # boot_native is attached to the class at import time, so type checkers cannot see it.
    bridge = TransformerBridge.boot_native(  # type: ignore[attr-defined]
        config.to_bridge_dict(), device=device, dtype=dtype, model_name="mesainterp-native"
    )
    bridge.eval()
    return bridge


def random_init_twin(
    model: ModelConfig | TransformerBridge, *, seed: int | None = None
) -> TransformerBridge:
    """Same architecture and init scheme, fresh random weights: the standard negative control.

    Takes a `ModelConfig` or any bridge. A native bridge is rebuilt from its
    TransformerLens config, a wrapped HuggingFace model from its HuggingFace config
    with the architecture's own initialisation, both seeded, in eval mode, on the
    model's device and dtype. The same seed gives the same weights.

    The seed defaults to the model's own seed plus one (a bridge without one counts
    as seed 0), so the twin is never accidentally the starting point of the trained
    model's run.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> twin = mesainterp.random_init_twin(model)
    >>> twin.cfg.seed, mesainterp.model_shape(twin) == mesainterp.model_shape(model)
    (1, True)
    >>> mesainterp.fingerprint(twin) == mesainterp.fingerprint(model)
    False
    """
    if isinstance(model, ModelConfig):
        twin_seed = model.seed + 1 if seed is None else seed
        return build_model(ModelConfig(**(model.to_dict() | {"seed": twin_seed})))
    if not isinstance(model, TransformerBridge):
        raise MesaInterpError(
            f"random_init_twin: expected a ModelConfig or a TransformerBridge, "
            f"got {type(model).__name__}"
        )
    own_seed = getattr(model.cfg, "seed", None)
    twin_seed = (int(own_seed or 0) + 1) if seed is None else seed
    source = model_source(model)
    if source == "native":
        return _native_twin(model, twin_seed)
    if source == "hf":
        from mesainterp.model.hf import hf_random_twin

        return hf_random_twin(model, seed=twin_seed)
    raise MesaInterpError(
        f"random_init_twin: cannot rebuild a bridge around {type(model.original_model).__name__} "
        "(supported: TransformerLens-native and HuggingFace transformers models)"
    )


def _native_twin(model: TransformerBridge, seed: int) -> TransformerBridge:
    cfg: Any = copy.deepcopy(model.cfg)
    cfg.seed = seed
    weight = next(model.parameters())
    twin = TransformerBridge.boot_native(  # type: ignore[attr-defined]
        cfg,
        device=weight.device,
        dtype=weight.dtype,
        model_name=getattr(model.cfg, "model_name", None) or "mesainterp-native",
    )
    twin.eval()
    return twin
