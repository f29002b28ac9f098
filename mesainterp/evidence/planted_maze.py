"""A hand-built maze solver: distances to the target by flood fill, then downhill steps.

`planted_flood_model(task)` solves the maze task (a perfect maze: a spanning tree of
the grid, so the path between two cells is unique) with an algorithm written into
the weights:

1. Flood fill from the target, one step a layer: from the ":" and answer positions,
   attend to every connection with an end in the filled set B and add its other end.
   Several connections match at once, so attention averages them; the block's ReLU
   MLP rounds B back to a 0/1 set and adds it to a counter A. After the last step
   A_v = steps + 1 - distance(v, target): a distance map, larger nearer the target.
2. Walk downhill: at an answer position holding cell t, attend to the connection
   from t to the neighbour with the largest A, which is one step nearer the target
   (in a tree every other neighbour is one step farther), and write that neighbour.
   The score of "no move" sits between the two, so at the target, whose neighbours
   are all farther, nothing is written and the MLP writes END instead (A_t = max).

Unlike the graph-search model (`planted_graph`), nothing is planned at ":": the path
is read off the distance map one answer position at a time.

Residual subspaces: TOK, POS (one-hot), P (at a connection's second cell: its
first), B (filled set), T (this layer's new cells, cleared by the MLP), A (the
distance counter), A_t (the counter at the current cell, one dimension), S (logits).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.evidence.planted_weights import (
    broadcast_head,
    first_answer_head,
    head_views,
    path_model_state,
    relu_path_config,
    require_task,
    round_set_mlp,
    set_step_head,
)
from mesainterp.model.config import ModelConfig

__all__ = ["planted_flood_config", "planted_flood_model"]

SLOPE = 8.0  # score per unit of A in the downhill readout


def planted_flood_config(task: object) -> ModelConfig:
    """The architecture of the planted flood-fill model for a maze task."""
    require_task(task, "maze", "the planted flood-fill model")
    n = int(task.n_cells)  # type: ignore[attr-defined]
    steps = n - 1  # the longest path in a spanning tree of n cells
    return relu_path_config(
        task, n_layers=steps + 3, state_dims=4 * n + 1, n_heads=3,
        d_head=2 * n + 3, d_mlp=4 * n,
    )  # fmt: skip


@torch.no_grad()
def planted_flood_model(task: object, *, sharpness: float = 120.0) -> TransformerBridge:
    """A maze bridge that floods distances from the target, then walks downhill.

    With K = n_cells - 1 flood steps, K + 3 blocks:

    - block 0, head 0: every position reads the previous token into P (at a
      connection's second cell, its first); head 1: the ":" and answer positions
      put the target into B and A; head 2: at ":" the origin is the answer.
    - blocks 1..K, heads 0 and 1: from B, attend to the connections with their
      second (head 0) or first (head 1) cell in B and write the other cell into T
      (keys gated to the connections' second tokens; "<o>", whose P is empty, is
      the sink). MLP: B <- min(1, B + gain·T), A <- A + B, T <- 0.
    - block K+1, MLP: A_t = Σ_v relu(A_v + C·TOK_v - C), the counter at the current
      cell (C above any count).
    - block K+2, heads 0 and 1: score the connections at t (one head per
      orientation) by SLOPE·A of the other cell, against "no move" at SLOPE·A_t,
      and write the winner. MLP: END when A_t = K + 1 (t is the target).
    """
    config = planted_flood_config(task)
    n = int(task.n_cells)  # type: ignore[attr-defined]
    vocab, n_ctx = config.d_vocab, config.n_ctx
    prompt_len = int(task.prompt_len)  # type: ignore[attr-defined]
    steps = n - 1
    sink, colon = prompt_len - 5, prompt_len - 1
    origin_pos = int(task.origin_pos)  # type: ignore[attr-defined]
    target_pos = int(task.target_pos)  # type: ignore[attr-defined]
    second = {3 * e + 1 for e in range(int(task.n_edges))}  # type: ignore[attr-defined]
    tok, pos = 0, vocab
    par, fill, new, count = (vocab + n_ctx + k * n for k in range(4))
    here = vocab + n_ctx + 4 * n  # A_t
    out = here + 1
    dh, g, m = config.d_head, sharpness, 10.0
    # The readout's match term must beat any unmatched connection's SLOPE·A.
    g_read = max(g, SLOPE * (steps + 1) + 5 * SLOPE)
    gain = float(n + 1)
    cap = float(steps + 2)
    scale = math.sqrt(dh)
    model, state = path_model_state(config, n_ids=n, par=par, sharpness=g)
    head = partial(head_views, state, d_head=dh)

    # Block 0: previous token -> P; target -> B and A; the origin answers ":".
    broadcast_head(state, 0, 1, d_head=dh, n_ids=n, n_ctx=n_ctx, colon=colon, sink=sink,
                   key_pos=target_pos, src=tok, pos=pos, outs=(fill, count), sharpness=g)  # fmt: skip
    first_answer_head(state, 0, 2, d_head=dh, n_ids=n, sink=sink, colon=colon,
                      key_pos=origin_pos, src=tok, pos=pos, out=out, sharpness=g,
                      weight=2 * m)  # fmt: skip
    # Blocks 1..K: one flood step each way, then B rounded, counted and T cleared.
    for layer in range(1, steps + 1):
        for h, (key_block, value_block) in enumerate(((tok, par), (par, tok))):
            set_step_head(state, layer, h, d_head=dh, n_ctx=n_ctx, n_ids=n, pos=pos,
                          member=fill, key=key_block, value=value_block, write=new,
                          keys=second, sink=sink, sharpness=g)  # fmt: skip
        round_set_mlp(state, layer, n_ids=n, member=fill, new=new, gain=gain, count=count)
    # Block K+1, MLP: A_t, the counter at the current cell.
    layer = steps + 1
    w_in, b_in = state[f"blocks.{layer}.mlp.in.weight"], state[f"blocks.{layer}.mlp.in.bias"]
    w_out = state[f"blocks.{layer}.mlp.out.weight"]
    for v in range(n):
        w_in[v, count + v], w_in[v, tok + v], b_in[v] = 1.0, cap, -cap
        w_out[here, v] = 1.0
    # Block K+2: one step downhill (one head per orientation), END at the target.
    last = steps + 2
    for h, (match_block, other_block) in enumerate(((par, tok), (tok, par))):
        wq, bq, wk, wv, wo = head(last, h)
        for v in range(n):
            wq[v, tok + v] = g_read * scale
            wk[v, match_block + v] = 1.0
            wq[n + v, count + v] = SLOPE * scale
            wk[n + v, other_block + v] = 1.0
            wv[v, other_block + v] = 1.0
            wo[out + v, v] = m
        # "No move" at the sink scores g_read + SLOPE·A_t, between the neighbour one
        # step nearer (A_t + 1) and those one step farther (A_t - 1).
        bq[2 * n] = scale
        wk[2 * n, pos + sink] = g_read
        wq[2 * n + 1, here] = SLOPE * scale
        wk[2 * n + 1, pos + sink] = 1.0
        for p in range(n_ctx):
            if p not in second and p != sink:
                wk[2 * n, pos + p] = -3 * g_read
    w_in, b_in = state[f"blocks.{last}.mlp.in.weight"], state[f"blocks.{last}.mlp.in.bias"]
    w_out = state[f"blocks.{last}.mlp.out.weight"]
    w_in[0, here], b_in[0] = 1.0, -(steps + 0.5)
    w_out[out + int(task.end), 0] = 2 * m  # type: ignore[attr-defined]
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
