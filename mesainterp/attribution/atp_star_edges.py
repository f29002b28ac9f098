"""AtP* for edges: the QK fix at query and key receivers, and GradDrop.

QK fix. For an edge u -> L{l}H{h}.q, patching u's clean output into that input alone
gives the head's query input x' = resid_l + (out_u(clean) - out_u(corrupted)) at every
position, while its keys and every other head stay corrupted. The fix computes q' from
x' through the model's own norm, projection and rotary embedding, the head's exact
pattern A' and scores the edge <A' - A, dM/dA>; a key receiver (one per key/value head
under grouped-query attention) changes the keys of every query head that reads it, and
its score sums over those heads. dM/dA comes from the gradients at the downstream
inputs: a head's output reaches M through every input that reads it, so
dM/d(out_h) = sum of their gradients, dM/dz_h = W_O[h]^T dM/d(out_h) and
dM/dA = dM/dz_h . v. Value, MLP and logit receivers keep the EAP score; so does the
path from u to the head through earlier heads' softmaxes (only the receiver's own
softmax is exact).

GradDrop. The run of dropped layer l is the same decomposed forward with layer l's
attention and MLP outputs cut from the gradient (same values): `dropped_forward`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.attribution.atp_star import combine_grad_drop, masked_pattern
from mesainterp.attribution.edge_forward import EdgeForward, EdgeRun

__all__ = ["dropped_forward", "pattern_grads", "qk_edge_scores", "star_edge_scores"]

# Upstream nodes per chunk of the QK fix: bounds its [chunk, b, H, p, p] patterns.
_CHUNK_ELEMENTS = 1 << 24


class _DroppedFast:
    """A `FastForward` whose layer `drop` outputs carry no gradient (GradDrop)."""

    def __init__(self, fast: Any, drop: int) -> None:
        self._fast, self._drop = fast, drop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fast, name)

    def attend(self, layer: int, *args: Any, **kwargs: Any) -> Tensor:
        z = self._fast.attend(layer, *args, **kwargs)
        return _cut(z) if layer == self._drop else z

    def mlp(self, layer: int, x: Tensor) -> Tensor:
        out = self._fast.mlp(layer, x)
        return _cut(out) if layer == self._drop else out


def _cut(t: Tensor) -> Tensor:
    # Same value, zero gradient; `t * 0` keeps the layer's leaves in the graph.
    return t.detach() + t * 0


def dropped_forward(ef: EdgeForward, layer: int) -> EdgeForward:
    """`ef` with the gradient through block `layer`'s attention and MLP outputs dropped."""
    out = copy.copy(ef)
    out.fast = _DroppedFast(ef.fast, layer)  # type: ignore[assignment]
    return out


def _layer_qkv(ef: EdgeForward, layer: int, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rotated q, k and v [b, heads, p, d_head] of residual `x` [b, p, d_model]."""
    f = ef.fast
    a = f.layers[layer].attn
    xn = f.layers[layer].ln1(x)
    q, k, v = (
        f.project(xn, w, b).transpose(1, 2)
        for w, b in ((a.w_q, a.b_q), (a.w_k, a.b_k), (a.w_v, a.b_v))
    )
    q, k = f.rotate(q, k)
    return q, k, v


def _repeat(t: Tensor, n_heads: int) -> Tensor:
    r = n_heads // t.shape[-3]
    return t if r == 1 else t.repeat_interleave(r, dim=-3)


def pattern_grads(
    ef: EdgeForward, run: EdgeRun, grads: Tensor, *, dropped: int | None = None
) -> list[Tensor | None]:
    """Per layer, dM/dA [b, H, p, p] from one gradient run's downstream-input gradients
    (see the module docstring); None for the layer the run cut from the gradient."""
    out: list[Tensor | None] = []
    with torch.no_grad():
        for layer in range(ef.fast.n_layers):
            if layer == dropped:
                out.append(None)
                continue
            _, _, v = _layer_qkv(ef, layer, run.resid[layer].detach())
            out.append(_pattern_grad(ef, layer, grads, v))
    return out


def qk_edge_scores(
    ef: EdgeForward,
    run: EdgeRun,
    grads_a: list[list[Tensor | None]],
    diffs: Float[Tensor, "n_up batch pos d_model"],
    scores: list[Tensor],
) -> None:
    """Overwrite the q and k receivers' columns of each `scores[i]` [n_up, n_down, b]
    with QK-fixed scores from gradient run i (`grads_a[i]`: its `pattern_grads`).

    The patterns are computed once for all runs (their forward values are the same); a
    run's dropped layer (None) keeps its receivers' score of 0, as dM/dA is 0 there.
    """
    f, g = ef.fast, ef.graph
    h, kv = f.n_heads, f.n_kv_heads
    for layer in range(f.n_layers):
        live = [i for i, per_layer in enumerate(grads_a) if per_layer[layer] is not None]
        if not live:
            continue
        resid = run.resid[layer].detach()
        with torch.no_grad():
            q, k, _ = _layer_qkv(ef, layer, resid)
            old = masked_pattern(f, layer, q, _repeat(k, h))  # [b, H, p, p]
            grad_a = torch.stack([t for i in live if (t := grads_a[i][layer]) is not None])
            q_cols = [g.down_index(g.head_input(layer, i, "q")) for i in range(h)]
            k_cols = [g.down_index(g.head_input(layer, i, "k")) for i in range(kv)]
            n_up = g.n_before(q_cols[0])
            batch, seq = resid.shape[:2]
            chunk = max(1, _CHUNK_ELEMENTS // (batch * h * seq * seq))
            for start in range(0, n_up, chunk):
                ups = slice(start, min(n_up, start + chunk))
                x = (resid.unsqueeze(0) + diffs[ups]).flatten(0, 1)  # [u*b, p, d]
                q2, k2, _ = _layer_qkv(ef, layer, x)
                n = q2.shape[0] // batch
                new_q = masked_pattern(f, layer, q2, _repeat(k, h).repeat(n, 1, 1, 1))
                new_k = masked_pattern(f, layer, q.repeat(n, 1, 1, 1), _repeat(k2, h))
                from_q = _effect(new_q, old, grad_a)  # [runs, u, b, H]
                from_k = _effect(new_k, old, grad_a).view(len(live), n, batch, kv, h // kv)
                for r, i in enumerate(live):
                    scores[i][ups, q_cols] = from_q[r].permute(0, 2, 1).to(scores[i].dtype)
                    per_kv = from_k[r].sum(-1).permute(0, 2, 1)
                    scores[i][ups, k_cols] = per_kv.to(scores[i].dtype)


def _pattern_grad(
    ef: EdgeForward, layer: int, grads: Tensor, v: Tensor
) -> Float[Tensor, "batch heads q_pos k_pos"]:
    """dM/dA of the layer's heads from the downstream inputs' gradients (module docstring)."""
    f, g = ef.fast, ef.graph
    h = f.n_heads
    valid = g.valid_mask().to(grads.device, grads.dtype)
    rows = [g.up_index(f"L{layer}H{i}") for i in range(h)]
    grad_out = torch.einsum("hj,jbpd->hbpd", valid[rows], grads)
    w_o = f.layers[layer].attn.w_o.view(f.d_model, h, f.d_head)
    grad_z = torch.einsum("hbpd,dhe->bhpe", grad_out, w_o)
    return grad_z @ _repeat(v, h).transpose(-2, -1)


def _effect(new: Tensor, old: Tensor, grad_a: Tensor) -> Float[Tensor, "runs n_up batch heads"]:
    """<new - old, dM/dA> per gradient run, upstream node, example and head (new is
    [u*b, H, p, p], grad_a [runs, b, H, p, p])."""
    change = (new.view(-1, *old.shape) - old).flatten(-2)  # [u, b, H, p*p]
    return torch.einsum("ubhk,rbhk->rubh", change, grad_a.flatten(-2))


def star_edge_scores(
    ef: EdgeForward,
    tok: Tensor,
    pos: Tensor | None,
    diffs: Float[Tensor, "n_up batch pos d_model"],
    value: Callable[[Tensor], Tensor],
    linear: Callable[[Tensor], Tensor],
    *,
    qk_fix: bool,
    grad_drop: bool,
) -> Float[Tensor, "n_up n_down batch"]:
    """Edge scores with the QK fix and/or GradDrop, from the corrupted inputs `tok`/`pos`.

    value:  logits -> the summed metric; linear: grads -> the EAP scores (masked).
    """
    drops: list[int | None] = list(range(ef.fast.n_layers)) if grad_drop else [None]
    per_run: list[Tensor] = []
    grads_a: list[list[Tensor | None]] = []  # kept per run instead of the full gradients
    for drop in drops:
        f = ef if drop is None else dropped_forward(ef, drop)
        run = f.run(tok, pos, leaves=True)
        grads = f.leaf_grads(run, value(run.logits)).detach()
        per_run.append(linear(grads))
        if qk_fix:
            grads_a.append(pattern_grads(ef, run, grads, dropped=drop))
        del grads
    if qk_fix:
        qk_edge_scores(ef, run, grads_a, diffs, per_run)
    return combine_grad_drop(per_run) if grad_drop else per_run[0]
