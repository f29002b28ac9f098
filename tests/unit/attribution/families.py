"""Tiny bridges of every architecture family, built from configs with seeded random weights.

HuggingFace models come from their `transformers` config (no download) and are wrapped
into a `TransformerBridge` by TransformerLens's `build_bridge_from_module`; native ones
come from `TransformerBridge.boot_native`. Weights are redrawn at unit scale (HF's 0.02
init leaves attention uniform and every patching effect ~1e-5, which no 1e-4 check could
tell from zero); norms get non-trivial scales.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import transformers
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

__all__ = ["FAMILIES", "N_CTX", "REFUSED", "VOCAB", "build_family", "family_pair"]

VOCAB = 50
N_CTX = 16
_SMALL = {"vocab_size": VOCAB, "max_position_embeddings": N_CTX}
_LLAMA_LIKE = {
    "num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 64, **_SMALL,
}  # fmt: skip

_HF: dict[str, tuple[str, Callable[[], Any]]] = {
    "gpt2": (
        "GPT2LMHeadModel",
        lambda: transformers.GPT2Config(
            n_layer=2, n_embd=32, n_head=4, n_positions=N_CTX, vocab_size=VOCAB
        ),
    ),
    "neox": (  # parallel attention + MLP, rotary on half of each head
        "GPTNeoXForCausalLM",
        lambda: transformers.GPTNeoXConfig(
            num_hidden_layers=2,
            hidden_size=32,
            num_attention_heads=4,
            intermediate_size=64,
            rotary_pct=0.5,
            use_parallel_residual=True,
            **_SMALL,
        ),
    ),
    "llama": ("LlamaForCausalLM", lambda: transformers.LlamaConfig(**_LLAMA_LIKE)),
    "mistral": ("MistralForCausalLM", lambda: transformers.MistralConfig(**_LLAMA_LIKE)),
    "qwen2": ("Qwen2ForCausalLM", lambda: transformers.Qwen2Config(**_LLAMA_LIKE)),
    "gemma": ("GemmaForCausalLM", lambda: transformers.GemmaConfig(head_dim=8, **_LLAMA_LIKE)),
    "gemma2": ("Gemma2ForCausalLM", lambda: transformers.Gemma2Config(head_dim=8, **_LLAMA_LIKE)),
}

_NATIVE: dict[str, dict[str, Any]] = {
    "native-gpt2": {"act_fn": "gelu_new"},
    "native-llama": {
        "normalization_type": "RMS",
        "final_rms": True,
        "positional_embedding_type": "rotary",
        "n_key_value_heads": 2,
        "gated_mlp": True,
        "act_fn": "silu",
    },
}

FAMILIES: tuple[str, ...] = (
    "gpt2", "neox", "llama", "mistral", "qwen2", "gemma", "native-gpt2", "native-llama",
)  # fmt: skip
# Families the fast forward refuses, and a word its reason must contain.
REFUSED: dict[str, str] = {"gemma2": "soft-capping"}


def _redraw(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and ("norm" in name or "ln" in name):
                p.copy_(torch.empty_like(p).uniform_(0.5, 1.5, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)


@functools.cache
def build_family(name: str, seed: int = 0) -> TransformerBridge:
    """The tiny bridge of one family (cached: tests must not change its weights)."""
    if name in _NATIVE:
        cfg = {
            "n_layers": 2, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64,
            "n_ctx": N_CTX, "d_vocab": VOCAB, "seed": seed, **_NATIVE[name],
        }  # fmt: skip
        model = TransformerBridge.boot_native(cfg)  # type: ignore[attr-defined]
        _redraw(model.original_model, seed)
    else:
        architecture, make_config = _HF[name]
        config = make_config()
        torch.manual_seed(seed)
        hf = getattr(transformers, architecture)(config)
        _redraw(hf, seed)  # before wrapping: the bridge splits fused projections once
        hf.eval()
        model = build_bridge_from_module(hf, architecture, hf_config=config)
    model.eval()
    return model


def family_pair(
    n: int = 4, seq: int = 7, *, diff_at: tuple[int, ...] = (2, 5), seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean and corrupted token ids differing only at `diff_at`."""
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, VOCAB, (n, seq), generator=gen)
    corrupted = clean.clone()
    for p in diff_at:
        corrupted[:, p] = (clean[:, p] + torch.randint(1, VOCAB, (n,), generator=gen)) % VOCAB
    return clean, corrupted
