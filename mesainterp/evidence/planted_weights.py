"""Shared pieces of the hand-built (planted) models: one-hot subspaces and head views.

Every planted model starts from a zero state dict whose token, position and logit
subspaces are one-hot blocks of the residual stream, then writes each head's
weights through views of the bridge's nn.Linear layout.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.model.build import build_model
from mesainterp.model.config import ModelConfig

__all__ = [
    "broadcast_head",
    "first_answer_head",
    "head_views",
    "next_on_path_head",
    "one_hot_state",
    "path_model_state",
    "previous_token_head",
    "relu_path_config",
    "require_task",
    "round_set_mlp",
    "set_step_head",
    "two_term_gate",
]


def one_hot_state(
    model: TransformerBridge, *, vocab: int, n_ctx: int, tok: int, pos: int, out: int
) -> dict[str, Tensor]:
    """A zero state dict of `model` with TOK (at `tok`), POS (at `pos`) one-hot
    embeddings and the unembedding reading the logit block at `out`."""
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    for v in range(vocab):
        state["embed.weight"][v, tok + v] = 1.0
        state["unembed.weight"][v, out + v] = 1.0
    for p in range(n_ctx):
        state["pos_embed.weight"][p, pos + p] = 1.0
    return state


def require_task(task: object, name: str, what: str) -> None:
    """Refuse a task other than `name` for the planted model `what`."""
    got = getattr(task, "name", None)
    if got != name:
        raise MesaInterpError(f"task: {what} is for {name!r}, got {got!r}")


def relu_path_config(
    task: object, *, n_layers: int, state_dims: int, n_heads: int, d_head: int, d_mlp: int
) -> ModelConfig:
    """A ReLU, LayerNorm-free architecture for a path task: TOK, POS, `state_dims`
    of the model's own subspaces, then the logits (d_head at least n_ctx, for
    position-matching keys)."""
    vocab, n_ctx = int(task.d_vocab), int(task.seq_len)  # type: ignore[attr-defined]
    return ModelConfig(
        n_layers=n_layers,
        d_model=vocab + n_ctx + state_dims + vocab,
        n_heads=n_heads,
        d_head=max(n_ctx, d_head),
        d_mlp=d_mlp,
        d_vocab=vocab,
        n_ctx=n_ctx,
        act_fn="relu",
        normalization_type=None,
    )


def path_model_state(
    config: ModelConfig, *, n_ids: int, par: int, sharpness: float
) -> tuple[TransformerBridge, dict[str, Tensor]]:
    """A fresh bridge of `config` and its zero state dict with TOK at 0, POS after the
    vocabulary, the logits in the last `d_vocab` dimensions, and layer 0, head 0
    reading each previous token (ids below `n_ids`) into the block at `par`."""
    vocab, n_ctx = config.d_vocab, config.n_ctx
    model = build_model(config)
    state = one_hot_state(
        model, vocab=vocab, n_ctx=n_ctx, tok=0, pos=vocab, out=config.d_model - vocab
    )
    previous_token_head(state, d_head=config.d_head, n_ctx=n_ctx, n_ids=n_ids, tok=0,
                        pos=vocab, dst=par, sharpness=sharpness)  # fmt: skip
    return model, state


def head_views(state: dict[str, Tensor], layer: int, h: int, d_head: int) -> tuple[Tensor, ...]:
    """Views of one head's (W_Q, b_Q, W_K, W_V, W_O) in nn.Linear layout."""
    a = f"blocks.{layer}.attn."
    rows = slice(h * d_head, (h + 1) * d_head)
    names = ("q.weight", "q.bias", "k.weight", "v.weight")
    return (*(state[a + name][rows] for name in names), state[a + "o.weight"][:, rows])


def previous_token_head(
    state: dict[str, Tensor],
    *,
    d_head: int,
    n_ctx: int,
    n_ids: int,
    tok: int,
    pos: int,
    dst: int,
    sharpness: float,
) -> None:
    """Layer 0, head 0: every position reads the previous token (ids below `n_ids`)
    into the block at `dst` (at an edge's second token, that is its first)."""
    scale = math.sqrt(d_head)
    wq, _, wk, wv, wo = head_views(state, 0, 0, d_head)
    for p in range(1, n_ctx):
        wq[p - 1, pos + p] = sharpness * scale
    for p in range(n_ctx):
        wk[p, pos + p] = 1.0
    for v in range(n_ids):
        wv[v, tok + v] = 1.0
        wo[dst + v, v] = 1.0


def first_answer_head(
    state: dict[str, Tensor],
    layer: int,
    h: int,
    *,
    d_head: int,
    n_ids: int,
    sink: int,
    colon: int,
    key_pos: int,
    src: int,
    pos: int,
    out: int,
    sharpness: float,
    weight: float,
) -> None:
    """One head that, at ":" only, reads the id block at `src` of position `key_pos`
    into the logits with `weight`; every other position attends to the `sink`
    position, whose `src` block must be empty."""
    scale = math.sqrt(d_head)
    wq, bq, wk, wv, wo = head_views(state, layer, h, d_head)
    bq[0] = scale
    wk[0, pos + sink] = sharpness
    wq[1, pos + colon] = 2 * sharpness * scale
    wk[1, pos + key_pos] = 1.0
    for v in range(n_ids):
        wv[v, src + v] = 1.0
        wo[out + v, v] = weight


def broadcast_head(
    state: dict[str, Tensor],
    layer: int,
    h: int,
    *,
    d_head: int,
    n_ids: int,
    n_ctx: int,
    colon: int,
    sink: int,
    key_pos: int,
    src: int,
    pos: int,
    outs: tuple[int, ...],
    sharpness: float,
) -> None:
    """From ":" onward, attend to position `key_pos` and copy its id at `src` into
    each block of `outs`; every position also scores half of `sharpness` on the
    `sink` (whose `src` block must be empty), so the others read nothing."""
    scale = math.sqrt(d_head)
    wq, bq, wk, wv, wo = head_views(state, layer, h, d_head)
    bq[1] = scale
    wk[1, pos + sink] = sharpness / 2
    for p in range(colon, n_ctx):
        wq[0, pos + p] = sharpness * scale
    wk[0, pos + key_pos] = 1.0
    for v in range(n_ids):
        wv[v, src + v] = 1.0
        for block in outs:
            wo[block + v, v] = 1.0


def two_term_gate(
    wk: Tensor, bq: Tensor, dim: int, *, d_head: int, n_ctx: int, pos: int,
    keys: set[int], sink: int, sharpness: float,
) -> None:  # fmt: skip
    """Query-key dimension `dim` of a match scored on two terms (2·sharpness when
    both hold): positions outside `keys` lose 2·sharpness, and the sink scores
    1.5·sharpness, between one term and two, so it wins when no key matches both."""
    bq[dim] = math.sqrt(d_head)
    for p in range(n_ctx):
        if p not in keys:
            wk[dim, pos + p] = -2 * sharpness
    wk[dim, pos + sink] = 1.5 * sharpness


def next_on_path_head(
    state: dict[str, Tensor],
    layer: int,
    h: int,
    *,
    d_head: int,
    n_ctx: int,
    n_ids: int,
    tok: int,
    pos: int,
    par: int,
    member: int,
    out: int,
    edge_heads: set[int],
    sink: int,
    sink_token: int,
    end: int,
    sharpness: float,
    weight: float,
) -> None:
    """At a position holding id t, attend to the edge (P = t, TOK = w) with w in the
    set at `member` and write w to the logits; with no such edge the sink wins and
    writes END (through its token, `sink_token`)."""
    scale = math.sqrt(d_head)
    wq, bq, wk, wv, wo = head_views(state, layer, h, d_head)
    n = n_ids
    for v in range(n):
        wq[v, tok + v] = sharpness * scale
        wk[v, par + v] = 1.0
        wq[n + v, member + v] = sharpness * scale
        wk[n + v, tok + v] = 1.0
        wv[v, tok + v] = 1.0
        wo[out + v, v] = weight
    two_term_gate(wk, bq, 2 * n, d_head=d_head, n_ctx=n_ctx, pos=pos, keys=edge_heads,
                  sink=sink, sharpness=sharpness)  # fmt: skip
    wv[n, tok + sink_token] = 1.0
    wo[out + end, n] = weight


def set_step_head(
    state: dict[str, Tensor],
    layer: int,
    h: int,
    *,
    d_head: int,
    n_ctx: int,
    n_ids: int,
    pos: int,
    member: int,
    key: int,
    value: int,
    write: int,
    keys: set[int],
    sink: int,
    sharpness: float,
) -> None:
    """From the set at `member`, attend to the positions in `keys` whose id at `key`
    is in the set and write their id at `value` into `write` (averaged over the
    matches); positions outside `keys` lose `sharpness`, and the `sink` (whose
    `value` block must be empty) scores half of it, so it wins when nothing matches."""
    scale = math.sqrt(d_head)
    wq, bq, wk, wv, wo = head_views(state, layer, h, d_head)
    for v in range(n_ids):
        wq[v, member + v] = sharpness * scale
        wk[v, key + v] = 1.0
        wv[v, value + v] = 1.0
        wo[write + v, v] = 1.0
    bq[n_ids] = scale
    for p in range(n_ctx):
        if p not in keys:
            wk[n_ids, pos + p] = -sharpness
    wk[n_ids, pos + sink] = sharpness / 2


def round_set_mlp(
    state: dict[str, Tensor],
    layer: int,
    *,
    n_ids: int,
    member: int,
    new: int,
    gain: float,
    count: int | None = None,
) -> None:
    """The block's MLP: member <- min(1, member + gain·new) and new <- 0 (and, with
    `count`, count += the rounded set). Needs d_mlp >= 4·n_ids. Hidden units per id:
    relu(B + gain·T), relu(B + gain·T - 1), relu(B), relu(T)."""
    w_in = state[f"blocks.{layer}.mlp.in.weight"]  # [d_mlp, d_model]
    b_in = state[f"blocks.{layer}.mlp.in.bias"]
    w_out = state[f"blocks.{layer}.mlp.out.weight"]  # [d_model, d_mlp]
    n = n_ids
    for v in range(n):
        h1, h2, h3, h4 = v, n + v, 2 * n + v, 3 * n + v
        for hid in (h1, h2):
            w_in[hid, member + v], w_in[hid, new + v] = 1.0, gain
        b_in[h2] = -1.0
        w_in[h3, member + v] = 1.0
        w_in[h4, new + v] = 1.0
        w_out[member + v, h1], w_out[member + v, h2], w_out[member + v, h3] = 1.0, -1.0, -1.0
        if count is not None:
            w_out[count + v, h1], w_out[count + v, h2] = 1.0, -1.0
        w_out[new + v, h4] = -1.0
