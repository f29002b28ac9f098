"""A hand-built model whose necessary heads attend one-hot: the oracle for AtP*'s QK fix.

Two layers, three heads each, attention only, no layer norm. Tokens are a content
c in 0..3, plain (id c), marked A (id 4 + c) or marked B (id 8 + c), and the query
token "?" (id 12), always last. Residual width 16:

    dims 0-3   content one-hot       dim 4  mark A     dim 5  mark B
    dim 6      the query token       dim 7  a dump no output reads
    dims 8-11  answer A (read as logits of ids 0-3)
    dims 12-15 answer B (read as logits of ids 4-7)

Heads (queries read dim 6, keys read one mark bit, values read the content):

    L0H0  necessary: finds the A-marked token with a score gap of `gap` (one-hot
          attention) and copies its content to answer A
    L1H0  necessary: the same for mark B, into answer B
    L0H1  distractor: finds mark A with a score gap of 1 (soft attention) and copies
          `leak` x its content to answer A
    L1H1  distractor: the same for mark B, into answer B
    L0H2  distractor: one-hot on mark B, but writes to the dump
    L1H2  distractor: writes nothing (W_O = 0)

A corrupted prompt has the same contents with both marks moved to tokens of other
contents. The metric is the sum of the two answers' logit differences at the last
position. Patching a necessary head's keys moves its attention back and recovers
half the metric, while the softmax gradient at the corrupted one-hot pattern is about
exp(-gap): plain attribution patching scores those keys near 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.discovery.planted import PlantedCase
from mesainterp.errors import ConfigError
from mesainterp.model.build import build_model
from mesainterp.model.config import ModelConfig
from mesainterp.patching.metrics import MetricFn, logit_diff

__all__ = [
    "SATURATED_DISTRACTORS",
    "SATURATED_NECESSARY",
    "saturated_model",
    "saturated_pair",
]

SATURATED_NECESSARY: tuple[str, ...] = ("L0H0", "L1H0")
SATURATED_DISTRACTORS: tuple[str, ...] = ("L0H1", "L1H1", "L0H2", "L1H2")
_D_HEAD = 4
_QUERY = 12
_VOCAB = 13


@dataclass(frozen=True)
class _Head:
    mark: int  # residual dim the key reads
    gap: float  # score of a marked key over any other
    writer: int  # first residual dim written (4 wide), or -1 for none
    scale: float  # W_O scale


def _unwrap(module: Any) -> Any:
    while hasattr(module, "_original_component"):
        module = module._original_component
    return module


def saturated_model(*, gap: float = 30.0, leak: float = 0.5) -> TransformerBridge:
    """The hand-built model (see the module docstring); `gap` sets the necessary heads'
    score gap (>= 20 saturates their softmax), `leak` the distractors' write scale."""
    if not gap > 0 or not leak > 0:
        raise ConfigError("gap, leak", f"expected positive numbers, got {gap!r}, {leak!r}")
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=3, d_head=_D_HEAD, d_vocab=_VOCAB, n_ctx=16,
        attn_only=True, normalization_type=None, seed=0,
    )  # fmt: skip
    model = build_model(config)
    native: Any = model.original_model
    heads = {
        (0, 0): _Head(4, gap, 8, 1.0),
        (0, 1): _Head(4, 1.0, 8, leak),
        (0, 2): _Head(5, gap, 7, 1.0),
        (1, 0): _Head(5, gap, 12, 1.0),
        (1, 1): _Head(5, 1.0, 12, leak),
        (1, 2): _Head(4, gap, -1, 0.0),
    }
    eye = torch.eye(4)
    with torch.no_grad():
        for p in native.parameters():
            p.zero_()
        embed = _unwrap(native.tok_embed).weight  # [vocab, d_model]
        for c in range(4):
            embed[c, c] = embed[4 + c, c] = embed[8 + c, c] = 1.0
            embed[4 + c, 4] = embed[8 + c, 5] = 1.0
        embed[_QUERY, 6] = 1.0
        for (layer, h), spec in heads.items():
            attn = _unwrap(_unwrap(native.layers[layer]).attn)
            rows = slice(h * _D_HEAD, (h + 1) * _D_HEAD)
            # score = q.k / sqrt(d_head): the query carries gap * sqrt(d_head).
            _unwrap(attn.q).weight[h * _D_HEAD, 6] = spec.gap * _D_HEAD**0.5
            _unwrap(attn.k).weight[h * _D_HEAD, spec.mark] = 1.0
            _unwrap(attn.v).weight[rows, 0:4] = eye
            if spec.writer == 7:
                _unwrap(attn.o).weight[7, rows] = spec.scale
            elif spec.writer >= 0:
                _unwrap(attn.o).weight[spec.writer : spec.writer + 4, rows] = spec.scale * eye
        head = _unwrap(native.head).weight  # [vocab, d_model]
        head[0:4, 8:12] = eye
        head[4:8, 12:16] = eye
    model.eval()
    return model


def saturated_pair(n: int = 16, *, seq_len: int = 8, seed: int = 0) -> PlantedCase:
    """Prompts of `seq_len - 1` content tokens then "?"; the corrupted prompt moves both
    marks to tokens of other contents. metric = the two answers' logit differences."""
    if seq_len < 5:
        raise ConfigError("seq_len", f"expected >= 5 (two marks, two moves, '?'), got {seq_len}")
    gen = torch.Generator().manual_seed(seed)
    clean = torch.zeros(n, seq_len, dtype=torch.long)
    corrupted = torch.zeros(n, seq_len, dtype=torch.long)
    answers = torch.zeros(4, n, dtype=torch.long)  # clean A, corrupted A, clean B, corrupted B
    for row in range(n):
        while True:
            content = torch.randint(0, 4, (seq_len - 1,), generator=gen)
            a, b, a2, b2 = torch.randperm(seq_len - 1, generator=gen)[:4].tolist()
            if content[a] != content[a2] and content[b] != content[b2]:
                break
        for tokens, (ia, ib) in ((clean, (a, b)), (corrupted, (a2, b2))):
            tokens[row, :-1] = content
            tokens[row, ia] += 4
            tokens[row, ib] += 8
            tokens[row, -1] = _QUERY
        answers[:, row] = torch.stack([content[a], content[a2], 4 + content[b], 4 + content[b2]])
    last = torch.full((n,), seq_len - 1, dtype=torch.long)
    metric_a = logit_diff(last, answers[0], answers[1])
    metric_b = logit_diff(last, answers[2], answers[3])

    def metric(logits: Tensor, batch: Any = None) -> Tensor:
        return metric_a(logits, batch) + metric_b(logits, batch)

    m: MetricFn = metric
    return PlantedCase(clean=clean, corrupted=corrupted, metric=m)
