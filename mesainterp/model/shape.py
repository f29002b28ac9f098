"""What an analysis needs to know about a bridge, whoever built it.

`model_shape` reads any `TransformerBridge` (TransformerLens-native or wrapped around
a HuggingFace model) into a frozen `ModelShape`: sizes, the key/value head count of
grouped-query attention, and the architecture flags that decide which sites exist
(a parallel attention+MLP block has no resid_mid) and which shortcuts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError

__all__ = ["ModelShape", "ModelSource", "model_shape", "model_source"]

ModelSource = Literal["native", "hf", "other"]


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """Sizes and architecture flags of a bridge.

    n_kv_heads: key/value heads; fewer than `n_heads` under grouped-query attention,
                where hook_k / hook_v hold [batch, pos, n_kv_heads, d_head] and each
                key/value head serves n_heads // n_kv_heads query heads. Defaults to
                n_heads.
    """

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    n_ctx: int
    d_vocab: int
    d_vocab_out: int
    attn_only: bool
    n_kv_heads: int | None = None
    d_mlp: int | None = None
    positional_embedding: str = "standard"  # "standard", "rotary", "alibi", ...
    normalization: str | None = "LN"  # "LN", "RMS", "LNPre", "RMSPre" or None
    act_fn: str | None = "gelu"
    gated_mlp: bool = False
    parallel_attn_mlp: bool = False
    attn_soft_cap: float | None = None
    logit_soft_cap: float | None = None
    source: ModelSource = "native"
    architecture: str | None = None

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        kv = self.n_kv_heads
        if not isinstance(kv, int) or kv <= 0 or self.n_heads % kv != 0:
            raise MesaInterpError(
                f"n_kv_heads: got {kv!r}, must be a positive divisor of n_heads ({self.n_heads})"
            )

    @property
    def grouped_query(self) -> bool:
        """Whether keys/values are shared between query heads."""
        return (self.n_kv_heads or self.n_heads) < self.n_heads


def model_source(model: TransformerBridge) -> ModelSource:
    """'native' (TransformerLens's own model), 'hf' (a transformers model) or 'other'."""
    inner = getattr(model, "original_model", None)
    try:
        from transformer_lens.model_bridge.sources.native.model import NativeModel

        if isinstance(inner, NativeModel):
            return "native"
    except ImportError:  # pragma: no cover - other TransformerLens layouts
        pass
    import transformers

    return "hf" if isinstance(inner, transformers.PreTrainedModel) else "other"


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def model_shape(model: TransformerBridge) -> ModelShape:
    """Read the shape of any `TransformerBridge` (native or booted from HuggingFace).

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> shape = mesainterp.model_shape(model)
    >>> shape.n_layers, shape.n_heads, shape.d_model, shape.d_mlp, shape.d_vocab_out
    (1, 2, 16, 32, 11)
    >>> shape.source, shape.architecture
    ('native', 'TransformerLensNative')
    """
    if not isinstance(model, TransformerBridge):
        raise MesaInterpError(
            f"expected a transformer_lens TransformerBridge, got {type(model).__name__}"
        )
    cfg = model.cfg
    source = model_source(model)
    d_vocab_out = cfg.d_vocab_out if cfg.d_vocab_out and cfg.d_vocab_out > 0 else cfg.d_vocab
    n_heads = int(cfg.n_heads)
    kv = getattr(cfg, "n_key_value_heads", None)
    d_mlp = getattr(cfg, "d_mlp", None)
    return ModelShape(
        n_layers=int(cfg.n_layers),
        n_heads=n_heads,
        d_model=int(cfg.d_model),
        d_head=int(cfg.d_head),
        n_ctx=int(cfg.n_ctx),
        d_vocab=int(cfg.d_vocab),
        d_vocab_out=int(d_vocab_out),
        attn_only=bool(cfg.attn_only),
        n_kv_heads=int(kv) if kv else n_heads,
        d_mlp=int(d_mlp) if d_mlp and not cfg.attn_only else None,
        positional_embedding=str(getattr(cfg, "positional_embedding_type", "standard")),
        normalization=getattr(cfg, "normalization_type", None),
        act_fn=getattr(cfg, "act_fn", None),
        gated_mlp=bool(getattr(cfg, "gated_mlp", False)),
        # TransformerLens's native block ignores the flag and always runs sequentially.
        parallel_attn_mlp=source != "native" and bool(getattr(cfg, "parallel_attn_mlp", False)),
        attn_soft_cap=_positive(getattr(cfg, "attn_scores_soft_cap", None)),
        logit_soft_cap=_positive(getattr(cfg, "output_logits_soft_cap", None)),
        source=source,
        architecture=getattr(cfg, "architecture", None),
    )
