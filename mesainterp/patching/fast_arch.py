"""What the fast forward reads from a bridge: weight views and the model's own modules.

A decomposed forward must split attention into heads and positions, so attention is
re-derived here from the projection weights (read as views of the model's parameters,
never copied). Everything that needs no splitting is the model's own module, called as
the bridge calls it: the norms, the MLP (plain or gated), the token embedding (Gemma's
scales itself), the unembedding and, for HuggingFace models, the rotary embedding and
the modeling file's own `apply_rotary_pos_emb`. That keeps the decomposed forward exact
by construction wherever it does not split anything.

Covered: TransformerLens-native bridges (learned or rotary positions, LayerNorm / RMS /
parameter-free norms, grouped-query attention, plain, SoLU-LN and gated MLPs) and
HuggingFace-wrapped GPT-2, GPT-NeoX / Pythia (parallel attention + MLP, partial rotary),
Llama, Mistral, Qwen2 and Gemma. Anything else raises `Unsupported` with a one-line
reason naming the feature.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError

__all__ = [
    "Architecture",
    "AttnWeights",
    "Layer",
    "Rotary",
    "Unsupported",
    "n_kv_heads",
    "read_architecture",
    "unwrap",
]

# HuggingFace model types whose decoder layer the decomposed forward reproduces.
HF_COVERED = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2", "gemma")


class Unsupported(MesaInterpError):
    """The fast forward cannot run this model exactly; the message says why."""


def unwrap(module: Any) -> Any:
    """The torch module a bridge component wraps (bridges nest `_original_component`)."""
    while hasattr(module, "_original_component"):
        module = module._original_component
    return module


def n_kv_heads(model: TransformerBridge) -> int:
    """Key/value heads per layer (fewer than the query heads under grouped-query attention)."""
    cfg = model.cfg
    return int(getattr(cfg, "n_key_value_heads", None) or cfg.n_heads)


@dataclass(frozen=True)
class AttnWeights:
    """One layer's attention projections in `F.linear` layout ([out, in]); all views."""

    w_q: Tensor  # [H*dh, d_model]
    b_q: Tensor | None
    w_k: Tensor  # [KV*dh, d_model]
    b_k: Tensor | None
    w_v: Tensor
    b_v: Tensor | None
    w_o: Tensor  # [d_model, H*dh]
    b_o: Tensor | None
    scale: float  # scores are divided by this


@dataclass(frozen=True)
class Layer:
    ln1: Callable[[Tensor], Tensor]
    attn: AttnWeights
    ln2: Callable[[Tensor], Tensor] | None
    mlp: Callable[[Tensor], Tensor] | None  # reads ln2's output


class Rotary:
    """Rotary embedding of queries and keys [b, heads, s, dh] at positions start.."""

    def __call__(self, q: Tensor, k: Tensor, start: int = 0) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class _NativeRotary(Rotary):
    """TransformerLens's native rotary module, which gathers its own tables by position."""

    def __init__(self, rope: Any) -> None:
        self._rope = rope

    def __call__(self, q: Tensor, k: Tensor, start: int = 0) -> tuple[Tensor, Tensor]:
        positions = torch.arange(start, start + q.shape[-2], device=q.device).unsqueeze(0)
        out: tuple[Tensor, Tensor] = self._rope.apply_rope(q, k, position_ids=positions)
        return out


class _HFRotary(Rotary):
    """A HuggingFace rotary module (cos/sin tables) and its modeling file's
    `apply_rotary_pos_emb` (which also handles partial rotary, as in GPT-NeoX)."""

    def __init__(self, rope: Any, apply: Callable[..., tuple[Tensor, Tensor]]) -> None:
        self._rope, self._apply = rope, apply
        self._key: tuple[int, torch.dtype, torch.device] | None = None
        self._tables: tuple[Tensor, Tensor] | None = None

    def __call__(self, q: Tensor, k: Tensor, start: int = 0) -> tuple[Tensor, Tensor]:
        end = start + q.shape[-2]
        key = (end, q.dtype, q.device)
        if self._key != key or self._tables is None:  # one length at a time
            positions = torch.arange(end, device=q.device).unsqueeze(0)
            self._tables, self._key = self._rope(q, positions), key
        cos, sin = self._tables
        return self._apply(q, k, cos[:, start:end], sin[:, start:end])


@dataclass(frozen=True)
class Architecture:
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_model: int
    attn_only: bool
    parallel: bool  # the MLP reads the block's input, not the attention's output
    tok_embed: Callable[[Tensor], Tensor]
    pos_embed: Tensor | None  # learned positions [n_ctx, d_model] (a view)
    rotary: Rotary | None
    layers: list[Layer]
    ln_final: Callable[[Tensor], Tensor]
    unembed: Callable[[Tensor], Tensor]
    max_seq: int  # inputs longer than this are refused (n_ctx, or a sliding window)
    device: torch.device
    dtype: torch.dtype


def _linear(module: Any, what: str) -> tuple[Tensor, Tensor | None]:
    """(weight [out, in], bias) of a Linear or a HuggingFace Conv1D, as views."""
    inner = unwrap(module)
    if isinstance(inner, nn.Linear):
        return inner.weight.detach(), None if inner.bias is None else inner.bias.detach()
    if type(inner).__name__ == "Conv1D" and hasattr(inner, "nf"):  # GPT-2: weight [in, out]
        return inner.weight.detach().t(), inner.bias.detach()
    raise Unsupported(f"{what} is a {type(inner).__name__}, not a linear projection")


def read_architecture(model: TransformerBridge) -> Architecture:
    """Read `model` for the fast forward, or raise `Unsupported`."""
    from transformer_lens.model_bridge.sources.native.model import NativeModel

    cfg = model.cfg
    native = getattr(model, "original_model", None)
    if float(getattr(cfg, "output_logits_soft_cap", -1.0) or -1.0) > 0:
        raise Unsupported("output logit soft-capping (Gemma 2 style) is not implemented")
    if float(getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0) > 0:
        raise Unsupported("attention soft-capping (Gemma 2 style) is not implemented")
    if getattr(cfg, "attention_dir", "causal") != "causal":
        raise Unsupported("bidirectional attention: the position shortcut needs causal attention")
    if isinstance(native, NativeModel):
        return _read_native(model, native)
    return _read_huggingface(model, native)


def _common(model: TransformerBridge, weight: Tensor) -> dict[str, Any]:
    cfg = model.cfg
    return {
        "n_layers": int(cfg.n_layers),
        "n_heads": int(cfg.n_heads),
        "n_kv_heads": n_kv_heads(model),
        "d_head": int(cfg.d_head),
        "d_model": int(cfg.d_model),
        "attn_only": bool(cfg.attn_only),
        "device": weight.device,
        "dtype": weight.dtype,
    }


def _read_native(model: TransformerBridge, native: Any) -> Architecture:
    from transformer_lens.model_bridge.sources.native.model import NativeAttention

    layers = []
    for i, block in enumerate(native.layers):
        attn = unwrap(block.attn)
        if not isinstance(attn, NativeAttention):
            raise Unsupported(f"layer {i}: unknown attention module {type(attn).__name__}")
        if attn.attn_scores_soft_cap > 0:
            raise Unsupported("attention soft-capping is not implemented")
        if not attn.causal:
            raise Unsupported(
                "bidirectional attention: the position shortcut needs causal attention"
            )
        weights = _attn_weights(attn.q, attn.k, attn.v, attn.o, scale=float(attn.scale), layer=i)
        layers.append(_layer(block, weights, attn_only=bool(model.cfg.attn_only)))
    rotary = None if native.rotary is None else _NativeRotary(native.rotary)
    if native.rotary is None and native.pos is None:
        raise Unsupported("this native model has neither learned nor rotary positions")
    tok = unwrap(native.tok_embed)
    return Architecture(
        **_common(model, tok.weight),
        parallel=False,
        tok_embed=tok,
        pos_embed=None if native.pos is None else unwrap(native.pos).weight.detach(),
        rotary=rotary,
        layers=layers,
        ln_final=unwrap(native.ln_out),
        unembed=unwrap(native.head),
        max_seq=int(model.cfg.n_ctx),
    )


def _layer(block: Any, weights: AttnWeights, *, attn_only: bool) -> Layer:
    """A block's norms and MLP (the model's own modules) around its attention weights."""
    return Layer(
        ln1=unwrap(block.ln1),
        attn=weights,
        ln2=None if attn_only else unwrap(block.ln2),
        mlp=None if attn_only else unwrap(block.mlp),
    )


def _attn_weights(q: Any, k: Any, v: Any, o: Any, *, scale: float, layer: int) -> AttnWeights:
    w_q, b_q = _linear(q, f"layer {layer}: the query projection")
    w_k, b_k = _linear(k, f"layer {layer}: the key projection")
    w_v, b_v = _linear(v, f"layer {layer}: the value projection")
    w_o, b_o = _linear(o, f"layer {layer}: the output projection")
    return AttnWeights(
        w_q=w_q, b_q=b_q, w_k=w_k, b_k=b_k, w_v=w_v, b_v=b_v, w_o=w_o, b_o=b_o, scale=scale
    )


def _hf_scale(hf_attn: Any, d_head: int, layer: int) -> float:
    """The divisor of the attention scores of a HuggingFace attention module."""
    if getattr(hf_attn, "scale_attn_by_inverse_layer_idx", False):
        raise Unsupported("GPT-2 scale_attn_by_inverse_layer_idx is not implemented")
    if getattr(hf_attn, "reorder_and_upcast_attn", False):
        raise Unsupported("GPT-2 reorder_and_upcast_attn is not implemented")
    scaling = getattr(hf_attn, "scaling", None)
    if scaling is not None:
        return 1.0 / float(scaling)
    if hasattr(hf_attn, "scale_attn_weights"):  # GPT-2
        return float(d_head) ** 0.5 if hf_attn.scale_attn_weights else 1.0
    raise Unsupported(f"layer {layer}: cannot read the attention scale of {type(hf_attn).__name__}")


def _read_huggingface(model: TransformerBridge, hf: Any) -> Architecture:
    hf_config = getattr(hf, "config", None)
    model_type = getattr(hf_config, "model_type", type(hf).__name__)
    if model_type not in HF_COVERED:
        raise Unsupported(
            f"HuggingFace model type {model_type!r} is not covered by the decomposed "
            f"forward (covered: {', '.join(HF_COVERED)})"
        )
    if model.training:
        raise Unsupported("the model is in training mode (dropout); call model.eval()")
    cfg = model.cfg
    d_head = int(cfg.d_head)
    layers = []
    sliding: list[int] = []
    for i, block in enumerate(model.blocks):
        hf_layer = unwrap(block)
        if any(
            hasattr(hf_layer, n)
            for n in ("post_feedforward_layernorm", "pre_feedforward_layernorm")
        ):
            raise Unsupported("post-attention / post-MLP norms (Gemma 2 style) are not implemented")
        attn = block.attn
        hf_attn = unwrap(attn)
        if hasattr(hf_attn, "q_norm") or hasattr(hf_attn, "k_norm"):
            raise Unsupported("query/key norms are not implemented")
        window = getattr(hf_attn, "sliding_window", None) or getattr(
            hf_config, "sliding_window", None
        )
        if window and (model_type != "qwen2" or getattr(hf_config, "use_sliding_window", False)):
            sliding.append(int(window))
        weights = _attn_weights(
            attn.q, attn.k, attn.v, attn.o, scale=_hf_scale(hf_attn, d_head, i), layer=i
        )
        layers.append(_layer(block, weights, attn_only=bool(cfg.attn_only)))
    rotary = None
    if (getattr(cfg, "positional_embedding_type", "standard") or "standard") == "rotary":
        rotary = _hf_rotary(model)
    elif not hasattr(model, "pos_embed"):
        raise Unsupported(f"{model_type}: positional embedding not found")
    tok = unwrap(model.embed)
    pos = None if rotary is not None else unwrap(model.pos_embed).weight.detach()
    return Architecture(
        **_common(model, tok.weight),
        parallel=bool(getattr(cfg, "parallel_attn_mlp", False)),
        tok_embed=tok,
        pos_embed=pos,
        rotary=rotary,
        layers=layers,
        ln_final=unwrap(model.ln_final),
        unembed=unwrap(model.unembed),
        max_seq=min([int(cfg.n_ctx), *sliding]),
    )


def _hf_rotary(model: TransformerBridge) -> Rotary:
    """The model's rotary module and its modeling file's `apply_rotary_pos_emb`."""
    if not hasattr(model, "rotary_emb"):
        raise Unsupported("rotary model without a rotary_emb component")
    rope = unwrap(model.rotary_emb)
    modeling = sys.modules[type(unwrap(model.blocks[0].attn)).__module__]
    apply = getattr(modeling, "apply_rotary_pos_emb", None)
    if apply is None:  # every covered family's modeling file has it, as (q, k, cos, sin)
        raise Unsupported(f"{modeling.__name__}: no apply_rotary_pos_emb")
    return _HFRotary(rope, apply)
