"""A hand-built model with a planted circuit: the oracle for circuit discovery.

Two layers, two heads each, attention only, no layer norm, all query/key weights zero
(so every head attends uniformly to the positions so far and the model is linear in
every node's output). Residual width 12 = three 4-wide subspaces:

    dims 0-3   token one-hot (the embedding); positional embeddings are zero
    dims 4-7   L0H1 copies the token subspace here (its V reads dims 0-3)
    dims 8-11  L1H0 copies dims 4-7 here; the unembedding reads only dims 8-11

L0H0 and L1H1 write nothing (W_O = 0). Clean and corrupted prompts differ only in
the token at position 0, and the metric is the logit difference of those two tokens
at the last position, so under resample ablation the circuit is exactly

    embed -> L0H1.v,  L0H1 -> L1H0.v,  L1H0 -> logits

and every other edge changes the metric by exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.model.build import build_model
from mesainterp.model.config import ModelConfig
from mesainterp.patching.metrics import MetricFn, logit_diff

__all__ = ["PLANTED_EDGES", "PlantedCase", "planted_model", "planted_pair"]

PLANTED_EDGES: frozenset[tuple[str, str]] = frozenset(
    {("embed", "L0H1.v"), ("L0H1", "L1H0.v"), ("L1H0", "logits")}
)
_D_HEAD = 4
_VOCAB = 4


def _unwrap(module: Any) -> Any:
    while hasattr(module, "_original_component"):
        module = module._original_component
    return module


def planted_model(*, seed: int = 0) -> TransformerBridge:
    """The hand-built model (unused heads' V weights are seeded random, their W_O zero)."""
    config = ModelConfig(
        n_layers=2, d_model=12, n_heads=2, d_head=_D_HEAD, d_vocab=_VOCAB, n_ctx=8,
        attn_only=True, normalization_type=None, seed=seed,
    )  # fmt: skip
    model = build_model(config)
    native: Any = model.original_model
    eye = torch.eye(_D_HEAD)
    with torch.no_grad():
        for p in native.parameters():
            p.zero_()
        _unwrap(native.tok_embed).weight[:, :_VOCAB] = torch.eye(_VOCAB)
        gen = torch.Generator().manual_seed(seed)
        for layer, (reader, writer) in enumerate(((0, 4), (4, 8))):
            attn = _unwrap(_unwrap(native.layers[layer]).attn)
            v, o = _unwrap(attn.v), _unwrap(attn.o)
            live = 1 if layer == 0 else 0
            dead = 1 - live
            rows = slice(live * _D_HEAD, (live + 1) * _D_HEAD)
            v.weight[rows, reader : reader + 4] = eye
            o.weight[writer : writer + 4, rows] = eye
            # The dead head reads something but writes nothing.
            dead_rows = slice(dead * _D_HEAD, (dead + 1) * _D_HEAD)
            v.weight[dead_rows] = torch.randn(_D_HEAD, 12, generator=gen)
        _unwrap(native.head).weight[:, 8:12] = torch.eye(_VOCAB)
    model.eval()
    return model


@dataclass(frozen=True, kw_only=True)
class PlantedCase:
    clean: Tensor
    corrupted: Tensor
    metric: MetricFn


def planted_pair(n: int = 16, *, seq_len: int = 6, seed: int = 0) -> PlantedCase:
    """Prompts differing only at position 0; metric = logit diff at the last position."""
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, _VOCAB, (n, seq_len), generator=gen)
    shift = torch.randint(1, _VOCAB, (n,), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 0] = (clean[:, 0] + shift) % _VOCAB
    last = torch.full((n,), seq_len - 1, dtype=torch.long)
    return PlantedCase(
        clean=clean, corrupted=corrupted, metric=logit_diff(last, clean[:, 0], corrupted[:, 0])
    )
