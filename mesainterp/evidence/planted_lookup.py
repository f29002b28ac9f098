"""A hand-built tree-path model that finds every ancestor of the goal in ONE layer.

The negative control of the iterative-computation test: it solves tree-path
exactly, but no ancestor is decodable before block 1 and all of them are after
it, so there is no layer-ordered rise to find. Backward chaining needs one layer
per tree level; the only honest way to skip the levels in one layer is a lookup
table, so this model is one, over every possible root-to-goal chain of a small
tree family (`MAX_CHAINS` caps the table; the default 12-node task is refused).

Residual subspaces: TOK, POS, P (at a child token: its parent), E (at a child
token: the edge one-hot, n x n), A (the adjacency matrix), G (the goal), U (the
path's node set), R (the root), K_1..K_D (the k-th ancestor of the goal), then
the logits.

- block 0: head 0 reads the previous token into P; the MLP writes
  E[p, c] = relu(P_p + TOK_c - 1), which is 1 exactly at the child token of the
  edge p -> c (elsewhere P or TOK misses a node).
- block 1: head 0 averages E over the child-token positions (a fixed position
  set), times the edge count: A. Head 1 copies the goal into G. The MLP has one
  unit per chain c_0 -> ... -> c_m of distinct nodes with m < D + 1:

      relu(sum_i A[c_i, c_i+1] + G[c_m] - sum_p A[p, c_0] + M·active - (m + 1 + M) + 1)

  is 1 when every edge of the chain is present, the chain ends at the goal and
  its first node has no parent (so it is the root-to-goal path, which is unique
  in a tree), and <= 0 otherwise. `active` (a position one-hot) is 1 from the
  goal token on, where G is the goal. The firing unit writes the whole chain at
  once: c_0 into R, every node into U, c_(m-k) into K_k.
- block 2: head 0, at an answer position holding t, attends to the edge
  (t -> w) with w in U and writes w (END at the goal); head 1 writes R at ":".
"""

from __future__ import annotations

import math
from functools import partial
from itertools import pairwise, permutations

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError
from mesainterp.evidence.planted_weights import (
    first_answer_head,
    head_views,
    next_on_path_head,
    path_model_state,
    require_task,
)
from mesainterp.model.config import ModelConfig

__all__ = [
    "MAX_CHAINS",
    "chain_count",
    "lookup_subspaces",
    "planted_lookup_config",
    "planted_lookup_model",
]

# The table has one MLP unit per chain; past this the model is too big to be a
# cheap control (n = 7, max_depth = 4 needs 3,619).
MAX_CHAINS = 20_000
ACTIVE = 100.0  # M above: larger than any chain's edge sum before the goal token


def chain_count(n_nodes: int, max_depth: int) -> int:
    """Sequences of distinct nodes of length 1..max_depth + 1: the table's size."""
    total, run = 0, 1
    for length in range(1, min(max_depth + 1, n_nodes) + 1):
        run *= n_nodes - length + 1
        total += run
    return total


def lookup_subspaces(task: object) -> dict[str, int]:
    """Where each residual block starts (P, E, A, G, U, R, K), and "state", their total width."""
    n, depth = int(task.n_nodes), int(task.max_depth)  # type: ignore[attr-defined]
    vocab, n_ctx = int(task.d_vocab), int(task.seq_len)  # type: ignore[attr-defined]
    widths = {"P": n, "E": n * n, "A": n * n, "G": n, "U": n, "R": n, "K": depth * n}
    at, offsets = vocab + n_ctx, {}
    for name, width in widths.items():
        offsets[name] = at
        at += width
    offsets["state"] = at - vocab - n_ctx
    return offsets


def planted_lookup_config(task: object) -> ModelConfig:
    """The architecture of the one-layer lookup model for a tree-path task."""
    require_task(task, "tree-path", "the one-layer lookup model")
    n, depth = int(task.n_nodes), int(task.max_depth)  # type: ignore[attr-defined]
    chains = chain_count(n, depth)
    if chains > MAX_CHAINS:
        raise ConfigError(
            "task.n_nodes",
            f"the lookup table of {n} nodes, depth <= {depth} needs {chains} units",
            f"a tree family with at most {MAX_CHAINS} root-to-goal chains (e.g. n_nodes=7,"
            " max_depth=4)",
        )
    vocab, n_ctx = int(task.d_vocab), int(task.seq_len)  # type: ignore[attr-defined]
    return ModelConfig(
        n_layers=3,
        d_model=vocab + n_ctx + lookup_subspaces(task)["state"] + vocab,
        n_heads=2,
        d_head=max(n_ctx, n * n, 2 * n + 1),
        d_mlp=max(n * n, chains),
        d_vocab=vocab,
        n_ctx=n_ctx,
        act_fn="relu",
        normalization_type=None,
    )


@torch.no_grad()
def planted_lookup_model(task: object, *, sharpness: float = 20.0) -> TransformerBridge:
    """A tree-path bridge that writes every ancestor of the goal in block 1 (see the
    module docstring). Attention is a hard match up to leakage e^-(sharpness / 2)."""
    config = planted_lookup_config(task)
    n, depth = int(task.n_nodes), int(task.max_depth)  # type: ignore[attr-defined]
    vocab, n_ctx, dh = config.d_vocab, config.n_ctx, config.d_head
    prompt_len, n_edges = int(task.prompt_len), int(task.n_edges)  # type: ignore[attr-defined]
    sink, goal_pos, colon = prompt_len - 3, prompt_len - 2, prompt_len - 1
    child_pos = {3 * e + 1 for e in range(n_edges)}
    tok, pos, g, scale = 0, vocab, sharpness, math.sqrt(dh)
    at = lookup_subspaces(task)
    out = config.d_model - vocab
    model, state = path_model_state(config, n_ids=n, par=at["P"], sharpness=g)
    head = partial(head_views, state, d_head=dh)

    # Block 0 MLP: the edge one-hot at each child token.
    w_in, b_in = state["blocks.0.mlp.in.weight"], state["blocks.0.mlp.in.bias"]
    w_out = state["blocks.0.mlp.out.weight"]
    for p in range(n):
        for c in range(n):
            h = p * n + c
            w_in[h, at["P"] + p], w_in[h, tok + c], b_in[h] = 1.0, 1.0, -1.0
            w_out[at["E"] + h, h] = 1.0
    # Block 1, head 0: A = n_edges * mean of E over the child positions.
    _, bq, wk, wv, wo = head(1, 0)
    bq[0] = g * scale
    for p in child_pos:
        wk[0, pos + p] = 1.0
    for i in range(n * n):
        wv[i, at["E"] + i] = 1.0
        wo[at["A"] + i, i] = float(n_edges)
    # Block 1, head 1: the goal into G (from the goal token on).
    wq, _, wk, wv, wo = head(1, 1)
    for p in range(goal_pos, n_ctx):
        wq[0, pos + p] = g * scale
    wk[0, pos + goal_pos] = 1.0
    for v in range(n):
        wv[v, tok + v] = 1.0
        wo[at["G"] + v, v] = 1.0
    # Block 1 MLP: one unit per chain; the firing one writes the whole path at once.
    w_in, b_in = state["blocks.1.mlp.in.weight"], state["blocks.1.mlp.in.bias"]
    w_out = state["blocks.1.mlp.out.weight"]
    h = 0
    for length in range(1, min(depth + 1, n) + 1):
        for chain in permutations(range(n), length):
            for a, b in pairwise(chain):
                w_in[h, at["A"] + a * n + b] = 1.0
            w_in[h, at["G"] + chain[-1]] = 1.0
            for p in range(n):
                w_in[h, at["A"] + p * n + chain[0]] -= 1.0
            for p in range(goal_pos, n_ctx):
                w_in[h, pos + p] = ACTIVE
            b_in[h] = -(length + ACTIVE) + 1.0
            w_out[at["R"] + chain[0], h] = 1.0
            for v in chain:
                w_out[at["U"] + v, h] = 1.0
            for k in range(1, length):
                w_out[at["K"] + (k - 1) * n + chain[-1 - k], h] = 1.0
            h += 1
    # Block 2: read the path off U and the root off R.
    next_on_path_head(state, 2, 0, d_head=dh, n_ctx=n_ctx, n_ids=n, tok=tok, pos=pos,
                      par=at["P"], member=at["U"], out=out, edge_heads=child_pos, sink=sink,
                      sink_token=int(task.goal_marker), end=int(task.end),  # type: ignore[attr-defined]
                      sharpness=g, weight=10.0)  # fmt: skip
    first_answer_head(state, 2, 1, d_head=dh, n_ids=n, sink=sink, colon=colon, key_pos=colon,
                      src=at["R"], pos=pos, out=out, sharpness=g, weight=20.0)  # fmt: skip
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
