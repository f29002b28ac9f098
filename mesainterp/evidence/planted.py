"""Hand-built models whose search algorithm is known by construction.

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

import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.model.build import build_model
from mesainterp.model.config import ModelConfig

__all__ = ["planted_gd_config", "planted_gd_model"]

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
