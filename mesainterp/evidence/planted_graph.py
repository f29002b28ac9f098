"""A hand-built graph-search model: backward reachability from the goal, then readout.

`planted_reach_model(task)` solves the graph-search task (a DAG whose start -> goal
path is unique) with an algorithm written into the weights:

1. Collect B, the set of the goal's ancestors, one edge step per layer: from the
   ":" and answer positions, attend to every edge whose head is in B and add its
   tail to B. Several edges can match at once, so attention averages them; the
   block's ReLU MLP rounds B back to a 0/1 set.
2. Plan the path at ":": a pointer starts at the start vertex and moves, one layer
   a step, along the edge t -> w with w in B, writing each step to its own
   subspace. A child of t that is an ancestor of the goal lies on a start -> goal
   path, and the path is unique, so exactly one child matches until t is the goal.
3. Emit it: at an answer position holding t, attend to the edge t -> w with w in
   B and write w; at the goal nothing matches and END wins.

Unlike the tree task's pointer chase (`planted.planted_chain_model`), a vertex here
can have several parents, so the state is a set, not a pointer.

Residual subspaces: TOK (token one-hot), POS (position one-hot), P (at an edge's
head token: its tail), B (ancestor set), T (this layer's new ancestors, cleared by
the MLP), CUR (the planning pointer), STEP_1..STEP_L (the planned path), S (output
logits). No LayerNorm, so every weight has a meaning.
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
    next_on_path_head,
    path_model_state,
    relu_path_config,
    require_task,
    round_set_mlp,
    set_step_head,
    two_term_gate,
)
from mesainterp.model.config import ModelConfig

__all__ = ["planted_reach_config", "planted_reach_model"]


def planted_reach_config(task: object) -> ModelConfig:
    """The architecture of the planted reachability model for a graph-search task."""
    require_task(task, "graph-search", "the planted reachability model")
    n, depth = int(task.n_vertices), int(task.max_lookahead)  # type: ignore[attr-defined]
    return relu_path_config(
        task, n_layers=2 * depth, state_dims=(4 + depth) * n, n_heads=3,
        d_head=2 * n + 1, d_mlp=4 * n,
    )  # fmt: skip


@torch.no_grad()
def planted_reach_model(task: object, *, sharpness: float = 120.0) -> TransformerBridge:
    """A graph-search bridge that collects the goal's ancestors, then follows them.

    With L = max_lookahead, 2L blocks:

    - block 0, head 0: every position reads the previous token into P (at an
      edge's head token, that is its tail); head 1: the ":" and answer positions
      copy the goal into B; head 2: ":" copies the start vertex into CUR.
    - blocks 1..L-1, head 0: from B, attend to the head tokens in B (keys gated to
      head positions; the "<s>" token, whose P is empty, is the sink when nothing
      matches) and write their tails into T. MLP: B <- min(1, B + gain·T) (gain
      larger than the edge count, so any matched tail counts), T <- 0. The path's
      vertices after the start are at most L-1 steps from the goal.
    - blocks L..2L-1, head 0: at ":", attend to the edge with tail CUR and head in
      B; its value, head - tail, moves CUR to the head and writes the head to
      STEP_j. Past the goal the sink wins and nothing moves.
    - last block, head 1: at an answer position holding t, attend to the edge with
      tail t and head in B and write the head to the logits; with none (t is the
      goal) the sink wins and writes END. Head 2: at ":" the start token is the
      answer, written with twice the weight.

    Every attention is a hard match up to softmax leakage e^-(sharpness / 2). The default sharpness
    leaves room for the battery's goal edit, which also nudges the token subspace
    at the answer positions (the path's tokens are correlated with the goal).
    """
    config = planted_reach_config(task)
    n = int(task.n_vertices)  # type: ignore[attr-defined]
    vocab, n_ctx = config.d_vocab, config.n_ctx
    prompt_len = int(task.prompt_len)  # type: ignore[attr-defined]
    end = int(task.end)  # type: ignore[attr-defined]
    sink = prompt_len - 5  # "<s>": its previous token is "," so P is empty there
    start_pos, goal_pos, colon = prompt_len - 4, prompt_len - 2, prompt_len - 1
    head_pos = {3 * e + 1 for e in range(int(task.max_edges))}  # type: ignore[attr-defined]
    tok, pos = 0, vocab
    par, anc, new = vocab + n_ctx, vocab + n_ctx + n, vocab + n_ctx + 2 * n
    cur, step = vocab + n_ctx + 3 * n, vocab + n_ctx + 4 * n  # STEP_j: step + (j-1)·n
    depth = int(task.max_lookahead)  # type: ignore[attr-defined]
    out = vocab + n_ctx + (4 + depth) * n
    dh, g, m = config.d_head, sharpness, 10.0
    gain = float(task.max_edges + 2)  # type: ignore[attr-defined]
    scale = math.sqrt(dh)
    model, state = path_model_state(config, n_ids=n, par=par, sharpness=g)
    head = partial(head_views, state, d_head=dh)

    def _gate(wk: torch.Tensor, bq: torch.Tensor, dim: int) -> None:
        two_term_gate(wk, bq, dim, d_head=dh, n_ctx=n_ctx, pos=pos, keys=head_pos, sink=sink,
                      sharpness=g)  # fmt: skip

    # Block 0, head 1: goal -> B at ":" and the answer positions; others attend to the sink.
    broadcast_head(state, 0, 1, d_head=dh, n_ids=n, n_ctx=n_ctx, colon=colon, sink=sink,
                   key_pos=goal_pos, src=tok, pos=pos, outs=(anc,), sharpness=g)  # fmt: skip
    # Blocks 1..L-1: one backward step, then round B to a set.
    for layer in range(1, depth):
        set_step_head(state, layer, 0, d_head=dh, n_ctx=n_ctx, n_ids=n, pos=pos, member=anc,
                      key=tok, value=par, write=new, keys=head_pos, sink=sink, sharpness=g)  # fmt: skip
        round_set_mlp(state, layer, n_ids=n, member=anc, new=new, gain=gain)
    # Block 0, head 2: start -> CUR at ":"; every other position reads the sink.
    wq, bq, wk, wv, wo = head(0, 2)
    bq[0] = scale
    wk[0, pos + sink] = g / 2
    wq[1, pos + colon] = g * scale
    wk[1, pos + start_pos] = 1.0
    for v in range(n):
        wv[v, tok + v] = 1.0
        wo[cur + v, v] = 1.0
    # Blocks L..2L-1, head 0: the planning pointer takes one step along B.
    for j in range(1, depth + 1):
        wq, bq, wk, wv, wo = head(depth - 1 + j, 0)
        for v in range(n):
            wq[v, cur + v] = g * scale
            wk[v, par + v] = 1.0
            wq[n + v, anc + v] = g * scale
            wk[n + v, tok + v] = 1.0
            wv[v, tok + v], wv[v, par + v] = 1.0, -1.0
            wo[cur + v, v] = 1.0
            wv[n + 1 + v, tok + v] = 1.0
            wo[step + (j - 1) * n + v, n + 1 + v] = 1.0
        _gate(wk, bq, 2 * n)
    # Last block, head 1: the child of the current vertex that lies in B, else END.
    last = config.n_layers - 1
    next_on_path_head(state, last, 1, d_head=dh, n_ctx=n_ctx, n_ids=n, tok=tok, pos=pos,
                      par=par, member=anc, out=out, edge_heads=head_pos, sink=sink,
                      sink_token=int(task.start_marker), end=end, sharpness=g, weight=m)  # type: ignore[attr-defined]  # fmt: skip
    # Last block, head 2: at ":" the start vertex is the answer.
    first_answer_head(state, last, 2, d_head=dh, n_ids=n, sink=sink, colon=colon,
                      key_pos=start_pos, src=tok, pos=pos, out=out, sharpness=g, weight=2 * m)  # fmt: skip
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
