"""Tiny models of every architecture family, built from configs with seeded random weights.

Shared by every test that must hold on any bridge a researcher brings:

    HF_FAMILIES      HuggingFace configs, wrapped with `wrap_hf_model`:
        gpt2     GPT2Config: learned positions, LayerNorm, GELU MLP
        neox     GPTNeoXConfig: parallel attention + MLP, partial rotary
        llama    LlamaConfig: 4 query heads over 2 KV heads, rotary, RMSNorm, SwiGLU
        gemma    GemmaConfig: grouped-query, rotary, RMSNorm, GeGLU, scaled embeddings
        gemma2   Gemma2Config: as gemma plus post-norms and attention/logit soft-capping
    NATIVE_FAMILIES  TransformerLens-native (`boot_native`) where TL offers the family:
        native-gpt2   standard positions, LayerNorm
        native-llama  rotary, RMSNorm, gated SiLU MLP, 4 query heads over 2 KV heads

No download: every model is 2 layers, d_model 32, vocab 50, float32.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.model import ModelConfig, build_model, wrap_hf_model
from mesainterp.patching.metrics import logit_diff

__all__ = [
    "ALL_FAMILIES",
    "HF_FAMILIES",
    "NATIVE_FAMILIES",
    "VOCAB",
    "family_bridge",
    "hf_config",
    "hf_module",
    "native_config",
    "pair_inputs",
]

VOCAB = 50
N_CTX = 16
HF_FAMILIES = ("gpt2", "neox", "llama", "gemma", "gemma2")
NATIVE_FAMILIES = ("native-gpt2", "native-llama")
ALL_FAMILIES = HF_FAMILIES + NATIVE_FAMILIES


def hf_config(family: str, *, d_model: int = 32, n_layers: int = 2) -> Any:
    """The HuggingFace config of a family at the given width (head size 8 at d_model 32)."""
    heads = 4
    d_head = d_model // heads
    common: dict[str, Any] = {"vocab_size": VOCAB, "attn_implementation": "eager"}
    if family == "gpt2":
        return transformers.GPT2Config(
            n_layer=n_layers, n_embd=d_model, n_head=heads, n_positions=N_CTX, **common
        )
    if family == "neox":
        return transformers.GPTNeoXConfig(
            num_hidden_layers=n_layers, hidden_size=d_model, num_attention_heads=heads,
            intermediate_size=2 * d_model, max_position_embeddings=N_CTX,
            use_parallel_residual=True, rotary_pct=0.5, **common,
        )  # fmt: skip
    if family == "llama":
        return transformers.LlamaConfig(
            num_hidden_layers=n_layers, hidden_size=d_model, num_attention_heads=heads,
            num_key_value_heads=2, intermediate_size=2 * d_model, max_position_embeddings=N_CTX,
            **common,
        )  # fmt: skip
    if family in ("gemma", "gemma2"):
        cls = transformers.GemmaConfig if family == "gemma" else transformers.Gemma2Config
        return cls(
            num_hidden_layers=n_layers, hidden_size=d_model, num_attention_heads=heads,
            num_key_value_heads=2, head_dim=d_head, intermediate_size=2 * d_model,
            max_position_embeddings=N_CTX, **common,
        )  # fmt: skip
    raise ValueError(f"unknown family {family!r} (known: {', '.join(HF_FAMILIES)})")


_MODEL_CLASSES = {
    "gpt2": "GPT2LMHeadModel",
    "neox": "GPTNeoXForCausalLM",
    "llama": "LlamaForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
}


def hf_module(family: str, *, seed: int = 0, **sizes: Any) -> Any:
    """A randomly initialised (seeded) HuggingFace causal LM of the family, in eval mode."""
    config = hf_config(family, **sizes)
    cls = getattr(transformers, _MODEL_CLASSES[family])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = cls(config)
    return module.eval()


def native_config(
    family: str, *, d_model: int = 32, n_layers: int = 2, seed: int = 0
) -> ModelConfig:
    heads = 4
    if family == "native-gpt2":
        return ModelConfig(
            n_layers=n_layers, d_model=d_model, n_heads=heads, d_head=d_model // heads,
            d_mlp=4 * d_model, d_vocab=VOCAB, n_ctx=N_CTX, act_fn="gelu_new", seed=seed,
        )  # fmt: skip
    if family == "native-llama":
        return ModelConfig(
            n_layers=n_layers, d_model=d_model, n_heads=heads, d_head=d_model // heads,
            d_mlp=2 * d_model, d_vocab=VOCAB, n_ctx=N_CTX, act_fn="silu",
            normalization_type="RMS", positional_embedding_type="rotary", n_kv_heads=2,
            gated_mlp=True, seed=seed,
        )  # fmt: skip
    raise ValueError(f"unknown family {family!r} (known: {', '.join(NATIVE_FAMILIES)})")


def family_bridge(family: str, *, seed: int = 0, **sizes: Any) -> TransformerBridge:
    """A bridge of any family: HF ones wrapped, native ones built with `build_model`."""
    if family in NATIVE_FAMILIES:
        return build_model(native_config(family, seed=seed, **sizes))
    return wrap_hf_model(hf_module(family, seed=seed, **sizes))


def pair_inputs(
    *, batch: int, seq: int, seed: int = 0, differ_at: tuple[int, ...] | None = None
) -> tuple[Tensor, Tensor, Any]:
    """Clean and corrupted tokens and a logit-difference metric at the last position.

    `differ_at` makes the corrupted tokens equal the clean ones except at those
    positions (IOI-style pairs); None makes them differ everywhere.
    """
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, VOCAB, (batch, seq), generator=g)
    corrupted = torch.randint(0, VOCAB, (batch, seq), generator=g)
    if differ_at is not None:
        keep = torch.ones(seq, dtype=torch.bool)
        keep[list(differ_at)] = False
        corrupted[:, keep] = clean[:, keep]
    answer_pos = torch.full((batch,), seq - 1)
    right = torch.randint(0, VOCAB, (batch,), generator=g)
    wrong = torch.randint(0, VOCAB, (batch,), generator=g)
    return clean, corrupted, logit_diff(answer_pos, right, wrong)
