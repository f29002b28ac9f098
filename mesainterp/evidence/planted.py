"""Hand-built models whose search algorithm is known by construction.

`planted_chain_model(task)`: for tree-path, backward chaining (Brinkmann et al.
2024) written into the weights: one layer per tree level climbs from the goal
to the root through the edge tokens, then one layer reads the path off the
collected ancestors (see its docstring). Attention-only, no LayerNorm.

`planted_gd_model(task)`: for icl-regression, weights that compute exactly one
step of gradient descent from w = 0 on the in-context data (von Oswald et al.
2023), whose prediction at the query is

    y_hat = (lr / N) * sum_i y_i <x_i, x_q>.

Von Oswald et al. use linear self-attention; a `TransformerBridge` has softmax
attention, so the construction approximates it, with errors that shrink as
fast as wanted:

- block 0's MLP (ReLU) writes a copy of x that is zero on the query token:
  relu(x - C q) - relu(-x - C q), q = the is-query flag, C = 1000 (so |x| < C);
- block 1 has two heads scoring context token j from the query with
  +eps <x_q, x_j> and -eps <x_q, x_j>, plus B on the query itself (through the
  flag: the query's own x-score is zero thanks to the copy above). With e^B much
  larger than N, each head's softmax weight on a context token is
  e^(±eps s_j) / (e^B + N) to first order, so the difference of the two heads'
  outputs (values = y_j) is 2 eps sum_j y_j s_j / (e^B + N), up to O(eps^3) and
  O(N e^-B) relative terms; the output weights undo the constant.

With eps = 1e-3 and B = 12 the largest error is ~1e-3 of a typical prediction
(squared error ~1e-7 of their variance; the tests check it
against `gd_predictions`). Positional embeddings are zero and there is no
LayerNorm (`normalization_type=None`), so every weight has a meaning.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.planted_weights import (
    first_answer_head,
    head_views,
    next_on_path_head,
    path_model_state,
)
from mesainterp.model.build import build_model
from mesainterp.model.config import ModelConfig

__all__ = [
    "planted_chain_config",
    "planted_chain_model",
    "planted_gd_config",
    "planted_gd_model",
]

GATE = 1000.0  # larger than any |x| the task draws
EPS = 1e-3
SINK = 12.0


def planted_gd_config(task: object) -> ModelConfig:
    """The architecture of the planted GD model for an icl-regression task."""
    d_x, d_model = int(task.d_x), int(task.d_model)  # type: ignore[attr-defined]
    if d_model < 2 * d_x + 3:
        raise MesaInterpError(
            f"task.d_model: the planted GD model needs d_model >= 2 * d_x + 3 = {2 * d_x + 3},"
            f" got {d_model}"
        )
    return ModelConfig(
        n_layers=2,
        d_model=d_model,
        n_heads=2,
        d_head=d_x + 1,
        d_mlp=2 * d_x,
        d_vocab=d_model,
        d_vocab_out=1,
        n_ctx=int(task.seq_len),  # type: ignore[attr-defined]
        act_fn="relu",
        normalization_type=None,
    )


@torch.no_grad()
def planted_gd_model(task: object, *, lr: float | None = None) -> TransformerBridge:
    """A bridge computing one GD step at rate `lr` (default: the task's `effective_gd_lr`)."""
    if getattr(task, "name", None) != "icl-regression":
        raise MesaInterpError(
            f"task: the planted GD model is for 'icl-regression', got {getattr(task, 'name', None)!r}"
        )
    config = planted_gd_config(task)
    rate = float(task.effective_gd_lr if lr is None else lr)  # type: ignore[attr-defined]
    d_x, n = int(task.d_x), int(task.n_context)  # type: ignore[attr-defined]
    model = build_model(config)
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    y_dim, q_dim = d_x, d_x + 1
    xk = slice(d_x + 2, 2 * d_x + 2)  # x copied, zero on the query
    pred = 2 * d_x + 2
    dh = config.d_head
    # Block 0 MLP: hidden j = relu(x_j - C q), hidden d_x + j = relu(-x_j - C q).
    w_in = state["blocks.0.mlp.in.weight"]  # [d_mlp, d_model]
    w_out = state["blocks.0.mlp.out.weight"]  # [d_model, d_mlp]
    for j in range(d_x):
        w_in[j, j], w_in[j, q_dim] = 1.0, -GATE
        w_in[d_x + j, j], w_in[d_x + j, q_dim] = -1.0, -GATE
        w_out[xk.start + j, j] = 1.0
        w_out[xk.start + j, d_x + j] = -1.0
    # Block 1 attention: score = (q . k) / sqrt(d_head) = ±EPS <x_q, xk_j> + SINK * flag_j.
    scale = math.sqrt(dh)
    wq, bq = state["blocks.1.attn.q.weight"], state["blocks.1.attn.q.bias"]
    wk = state["blocks.1.attn.k.weight"]
    wv, wo = state["blocks.1.attn.v.weight"], state["blocks.1.attn.o.weight"]
    gain = (math.exp(SINK) + n) / (2 * EPS) * rate / n
    for h, sign in ((0, 1.0), (1, -1.0)):
        rows = slice(h * dh, (h + 1) * dh)
        for j in range(d_x):
            wq[rows.start + j, j] = sign * EPS * scale
            wk[rows.start + j, xk.start + j] = 1.0
        bq[rows.start + d_x] = 1.0
        wk[rows.start + d_x, q_dim] = SINK * scale
        wv[rows.start, y_dim] = 1.0
        wo[pred, rows.start] = sign * gain
    state["unembed.weight"][0, pred] = 1.0
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


# ---- tree-path: backward chaining ------------------------------------------------------


def planted_chain_config(task: object) -> ModelConfig:
    """The architecture of the planted backward-chaining model for a tree-path task."""
    n, depth = int(task.n_nodes), int(task.max_depth)  # type: ignore[attr-defined]
    vocab, n_ctx = int(task.d_vocab), int(task.seq_len)  # type: ignore[attr-defined]
    width = vocab + n_ctx + 3 * n + vocab
    return ModelConfig(
        n_layers=depth + 2,
        d_model=width,
        n_heads=2,
        d_head=max(n_ctx, 2 * n + 1),
        d_vocab=vocab,
        n_ctx=n_ctx,
        attn_only=True,
        normalization_type=None,
    )


@torch.no_grad()
def planted_chain_model(task: object, *, sharpness: float = 20.0) -> TransformerBridge:
    """A tree-path bridge that finds the path by backward chaining, one level per layer.

    Residual subspaces: TOK (token one-hot), POS (position one-hot), P (at a child
    token: its parent), C (pointer), U (ancestor set), S (output logits).

    - layer 0, head 0: every position reads the previous token into P (at the child
      token of an edge, that is its parent); head 1: the ":" and answer positions
      copy the goal into C and U.
    - layers 1..max_depth, head 0: the pointer C attends to the child token equal to
      it (keys gated to child positions) and moves to that edge's parent (value
      P - TOK); the parent is also added to U. Past the root nothing matches and
      the head attends to the "|" token, whose value is zero.
    - last layer, head 0: at an answer position holding node t, attend to the child
      token whose parent is t and which is in U (the next node on the path), and
      write it to the logits; with no such child (t is the goal) the "|" token wins
      and writes END. Head 1: at ":" the pointer (now the root) is written to the
      logits with twice the weight.

    Every attention is a hard match up to softmax leakage e^-(sharpness / 2).
    """
    if getattr(task, "name", None) != "tree-path":
        raise MesaInterpError(
            f"task: the planted chaining model is for 'tree-path', got {getattr(task, 'name', None)!r}"
        )
    config = planted_chain_config(task)
    n = int(task.n_nodes)  # type: ignore[attr-defined]
    vocab, n_ctx = config.d_vocab, config.n_ctx
    prompt_len = int(task.prompt_len)  # type: ignore[attr-defined]
    end = int(task.end)  # type: ignore[attr-defined]
    marker = int(task.goal_marker)  # type: ignore[attr-defined]
    sink, goal_pos, colon = prompt_len - 3, prompt_len - 2, prompt_len - 1
    child_pos = {3 * e + 1 for e in range(int(task.n_edges))}  # type: ignore[attr-defined]
    tok, pos = 0, vocab
    par, ptr, anc = vocab + n_ctx, vocab + n_ctx + n, vocab + n_ctx + 2 * n
    out = vocab + n_ctx + 3 * n
    dh, g, m = config.d_head, sharpness, 10.0
    scale = math.sqrt(dh)
    model, state = path_model_state(config, n_ids=n, par=par, sharpness=g)
    head = partial(head_views, state, d_head=dh)

    # Layer 0, head 1: goal -> C and U at ":" and the answer positions; "|" attends to itself.
    wq, _, wk, wv, wo = head(0, 1)
    for p in range(colon, n_ctx):
        wq[0, pos + p] = g * scale
    wq[1, pos + sink] = g * scale
    wk[0, pos + goal_pos] = 1.0
    wk[1, pos + sink] = 1.0
    for v in range(n):
        wv[v, tok + v] = 1.0
        wo[ptr + v, v] = 1.0
        wo[anc + v, v] = 1.0
    # Layers 1..max_depth, head 0: climb one level.
    for layer in range(1, config.n_layers - 1):
        wq, bq, wk, wv, wo = head(layer, 0)
        for v in range(n):
            wq[v, ptr + v] = g * scale
            wk[v, tok + v] = 1.0
            wv[v, par + v], wv[v, tok + v] = 1.0, -1.0
            wo[ptr + v, v] = 1.0
            wv[n + 1 + v, par + v] = 1.0
            wo[anc + v, n + 1 + v] = 1.0
        bq[n] = scale
        for p in range(n_ctx):
            if p not in child_pos:
                wk[n, pos + p] = -g
        wk[n, pos + sink] = g / 2
    # Last layer, head 0: the child of the current node that lies in U, else END.
    last = config.n_layers - 1
    next_on_path_head(state, last, 0, d_head=dh, n_ctx=n_ctx, n_ids=n, tok=tok, pos=pos,
                      par=par, member=anc, out=out, edge_heads=child_pos, sink=sink,
                      sink_token=marker, end=end, sharpness=g, weight=m)  # fmt: skip
    # Last layer, head 1: at ":" the pointer (the root) is the answer.
    first_answer_head(state, last, 1, d_head=dh, n_ids=n, sink=sink, colon=colon,
                      key_pos=colon, src=ptr, pos=pos, out=out, sharpness=g, weight=2 * m)  # fmt: skip
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
