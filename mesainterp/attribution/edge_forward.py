"""A forward pass in which every downstream node reads its own copy of the residual stream.

Edge-level methods need two things a plain forward does not give:

- the gradient of the metric at each downstream input *separately* (the q, k and v
  input of every head, every MLP input, the logits), although they all read the same
  residual stream; and
- runs in which single edges are cut: downstream node d reads its input with upstream
  u's contribution replaced by an ablated value,
  ``x_d = resid - sum_{u cut for d} (out_u - ablated_u)``.

`EdgeForward` computes both from a TransformerLens-native bridge's weights (read through
the patching package's `FastForward`, so the same models are supported and the same
refusal messages apply). Each head input gets its own layer norm, as TransformerLens's
`use_split_qkv_input` does. A run can start at any layer from a recorded base run,
because cutting edges into layer l changes nothing before layer l.

Gradients at the head inputs need no split forward: when no edge into a layer is cut,
every head input of that layer holds the same residual x, so the forward is the plain
one with a zero leaf on q, k and v, and the gradient at head h's q input is the layer
norm's vector-Jacobian product at x of ``dM/dq_h @ W_q[h]^T`` (one batched `vjp` for all
3 x n_heads inputs). `split_leaves=True` keeps the literal per-input copies, the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.graph import EdgeGraph
from mesainterp.errors import MesaInterpError
from mesainterp.model.build import model_shape
from mesainterp.patching.fast import FastForward, unsupported_reason

__all__ = ["EdgeForward", "EdgeRun", "edge_support_reason"]


def edge_support_reason(model: TransformerBridge) -> str | None:
    """Why edge-level methods cannot run on `model`, or None if they can."""
    return unsupported_reason(model)


@dataclass
class EdgeRun:
    """What one decomposed run produced.

    outs:     upstream outputs [b, p, d_model] in `EdgeGraph.upstream` order (positional
              embeddings expanded over the batch).
    resid:    residual stream entering each layer, then the final one (for restarts).
    leaves:   the zero tensors that take the gradients when they were requested: per
              layer one for the heads' inputs ([3, b, p, H, d_model] on split runs;
              [3, b, H, p, d_head] on q, k and v otherwise), then the MLP input
              ([b, p, d_model]); last the logits' input.
    head_inputs: per layer, the residual its heads read (shared-input runs only).
    """

    logits: Tensor
    outs: list[Tensor]
    resid: list[Tensor]
    leaves: list[Tensor] = field(default_factory=list)
    head_inputs: list[Tensor] = field(default_factory=list)


class EdgeForward:
    """Decomposed forward of a native bridge; see the module docstring."""

    def __init__(self, model: TransformerBridge) -> None:
        reason = edge_support_reason(model)
        if reason is not None:
            raise MesaInterpError(f"edge-level methods cannot run on this model: {reason}")
        self.fast = FastForward(model)
        self.graph = EdgeGraph.of(model_shape(model))
        f = self.fast
        h, dh = f.n_heads, f.d_head
        self.weights: list[dict[str, tuple[Tensor, Tensor]]] = []
        self.w_o: list[Tensor] = []
        for p in f.layers:
            d_model = p.w_q.shape[0]
            self.weights.append(
                {
                    "q": (p.w_q.view(d_model, h, dh).permute(1, 0, 2), p.b_q.view(h, dh)),
                    "k": (p.w_k.view(d_model, h, dh).permute(1, 0, 2), p.b_k.view(h, dh)),
                    "v": (p.w_v.view(d_model, h, dh).permute(1, 0, 2), p.b_v.view(h, dh)),
                }
            )
            self.w_o.append(p.w_o.view(h, dh, d_model))
        # Per layer, the q/k/v weights folded with the layer norm's (made on first use).
        self._folded: list[Tensor | None] = [None] * f.n_layers
        per_layer = 3 * h + (0 if f.attn_only else 1)
        self._layer_cols = [layer * per_layer for layer in range(f.n_layers)]
        # Upstream nodes computed before each layer (and, last, before the logits).
        self._layer_rows = [
            2 + layer * (h + (0 if f.attn_only else 1)) for layer in range(f.n_layers + 1)
        ]

    # -- inputs --------------------------------------------------------------------------

    def embed_parts(
        self, inputs: Tensor
    ) -> tuple[Float[Tensor, "batch pos d_model"], Float[Tensor, "batch pos d_model"]]:
        """(token embedding, positional embedding expanded over the batch)."""
        f = self.fast
        # Every edge method enters here: inputs go to the model's device and dtype.
        inputs = inputs.to(f.device, f.dtype) if inputs.is_floating_point() else inputs.to(f.device)
        tok = inputs if inputs.is_floating_point() else f.tok_embed(inputs)
        seq = inputs.shape[1]
        # Detached: a view of a parameter keeps requires_grad even under no_grad.
        pos = f.pos_embed.weight.detach()[:seq].unsqueeze(0).expand(tok.shape[0], -1, -1)
        return tok, pos

    # -- runs ----------------------------------------------------------------------------

    def run(
        self,
        tok: Float[Tensor, "batch pos d_model"],
        pos: Float[Tensor, "batch pos d_model"],
        *,
        cut: Tensor | None = None,
        ablated: list[Tensor] | None = None,
        leaves: bool = False,
        start_layer: int = 0,
        base: EdgeRun | None = None,
        split_leaves: bool = False,
    ) -> EdgeRun:
        """One decomposed run.

        cut:      float or bool [n_upstream, n_downstream]; 1 where the edge reads the
                  ablated value instead of the upstream node's output in this run.
        ablated:  per upstream node, a tensor broadcastable to [b, p, d_model].
        leaves:   add zero tensors requiring grad that give every downstream input's
                  gradient (`leaf_grads`).
        split_leaves: compute the head inputs' gradients through per-input copies of
                  the residual (the slow oracle of the shared-input path).
        start_layer, base: restart at `start_layer` from `base` (a run of the same inputs
                  with no cuts into layers < start_layer).
        """
        g, f = self.graph, self.fast
        if cut is not None and ablated is None:
            raise MesaInterpError("cut edges need ablated values")
        cut_f = None if cut is None else cut.to(device=tok.device, dtype=tok.dtype)
        if not 0 <= start_layer <= f.n_layers:
            raise MesaInterpError(f"start_layer: expected 0..{f.n_layers}, got {start_layer}")
        if start_layer > 0:
            if base is None:
                raise MesaInterpError("start_layer > 0 needs a base run")
            n0 = self._layer_rows[start_layer]
            outs = list(base.outs[:n0])
            resid = base.resid[start_layer]
            resids = list(base.resid[:start_layer])
        else:
            outs = [tok, pos]
            resid = tok + pos
            resids = []
        # Leaves are made with resid.new_zeros: on the model's device and in its dtype.
        if leaves and cut is not None:
            split_leaves = True  # cut layers give each head input its own value
        leaf_list: list[Tensor] = []
        head_inputs: list[Tensor] = []
        batch, seq, d_model = resid.shape
        h = f.n_heads

        def delta(cols: slice, n_rows: int) -> Tensor | None:
            if cut_f is None:
                return None
            block = cut_f[:n_rows, cols]
            rows = torch.nonzero(block.any(dim=1)).flatten().tolist()
            if not rows:
                return None
            assert ablated is not None
            diffs = torch.stack([outs[r] - ablated[r] for r in rows])  # [r, b, p, d]
            return torch.einsum("rbpd,rj->jbpd", diffs, block[rows])

        for layer in range(start_layer, f.n_layers):
            p, w = f.layers[layer], self.weights[layer]
            w_o = self.w_o[layer]
            resids.append(resid)
            col0, n_rows = self._layer_cols[layer], self._layer_rows[layer]
            d = delta(slice(col0, col0 + 3 * h), n_rows)
            q: Tensor
            k: Tensor
            v: Tensor
            if d is None and not (leaves and split_leaves):
                # Every head reads the same input: one matmul per projection.
                x = p.ln1(resid)
                q, k, v = (
                    (x @ wt + bias).view(batch, seq, h, -1).transpose(1, 2)
                    for wt, bias in ((p.w_q, p.b_q), (p.w_k, p.b_k), (p.w_v, p.b_v))
                )
                if leaves:
                    leaf = q.new_zeros(3, *q.shape).requires_grad_()
                    leaf_list.append(leaf)
                    head_inputs.append(resid.detach())
                    q, k, v = q + leaf[0], k + leaf[1], v + leaf[2]
            else:
                x3 = resid.unsqueeze(0).unsqueeze(3).expand(3, batch, seq, h, d_model)
                if d is not None:
                    x3 = x3 - d.view(3, h, batch, seq, d_model).permute(0, 2, 3, 1, 4)
                if leaves:
                    leaf = resid.new_zeros(3, batch, seq, h, d_model).requires_grad_()
                    leaf_list.append(leaf)
                    x3 = x3 + leaf
                xn = p.ln1(x3)
                q, k, v = (
                    torch.einsum("bphd,hde->bhpe", xn[i], w[name][0]) + w[name][1].unsqueeze(1)
                    for i, name in enumerate(("q", "k", "v"))
                )
            scores = (q @ k.transpose(-2, -1)) / p.scale
            mask = f.mask[:seq, :seq]
            pattern = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
            z = pattern.masked_fill(mask, 0.0) @ v  # [b, H, p, dh]
            results = torch.einsum("bhpe,hed->hbpd", z, w_o)
            outs.extend(results.unbind(0))
            resid = resid + results.sum(0) + p.b_o
            if not f.attn_only:
                assert p.ln2 is not None and p.w_in is not None and p.w_out is not None
                assert p.b_in is not None and p.b_out is not None
                d = delta(slice(col0 + 3 * h, col0 + 3 * h + 1), n_rows + h)
                x = resid if d is None else resid - d[0]
                if leaves:
                    leaf = resid.new_zeros(batch, seq, d_model).requires_grad_()
                    leaf_list.append(leaf)
                    x = x + leaf
                mlp_out = f.act(p.ln2(x) @ p.w_in + p.b_in) @ p.w_out + p.b_out
                outs.append(mlp_out)
                resid = resid + mlp_out
        resids.append(resid)
        d = delta(slice(g.n_downstream - 1, g.n_downstream), g.n_upstream)
        x = resid if d is None else resid - d[0]
        if leaves:
            leaf = resid.new_zeros(batch, seq, d_model).requires_grad_()
            leaf_list.append(leaf)
            x = x + leaf
        logits = f.unembed(x)
        return EdgeRun(
            logits=logits, outs=outs, resid=resids, leaves=leaf_list, head_inputs=head_inputs
        )

    def leaf_grads(self, run: EdgeRun, value: Tensor) -> Float[Tensor, "n_down batch pos d_model"]:
        """d value / d(each downstream input), in `EdgeGraph.downstream` order.

        Uses `torch.autograd.grad`, so no `.grad` of the model's parameters is touched.
        Each gradient is written once, straight into the result (copies of this
        [n_down, b, p, d_model] buffer were a third of EAP's time).
        """
        raw = torch.autograd.grad(value, run.leaves)
        f = self.fast
        last = raw[-1]
        out = last.new_empty((self.graph.n_downstream, *last.shape))
        n_inputs = 3 * f.n_heads
        row, i = 0, 0
        for layer in range(f.n_layers):
            g = raw[i]
            i += 1
            block = out[row : row + n_inputs]
            if run.head_inputs:  # [3, b, H, p, d_head]: back through W and the layer norm
                self._head_input_grads(layer, g, run.head_inputs[layer], out=block)
            else:  # [3, b, p, H, d] -> q heads, k heads, v heads
                block.view(3, f.n_heads, *g.shape[1:3], g.shape[4]).copy_(g.permute(0, 3, 1, 2, 4))
            row += n_inputs
            if not f.attn_only:
                out[row].copy_(raw[i])
                i += 1
                row += 1
        out[row].copy_(raw[i])
        return out

    def _head_input_grads(
        self,
        layer: int,
        g_qkv: Tensor,
        x: Float[Tensor, "batch pos d_model"],
        *,
        out: Float[Tensor, "n_inputs batch pos d_model"],
    ) -> None:
        """Gradients at the 3 x H head inputs from those at q, k and v (see the module
        docstring), written into `out` in q, k, v then head order."""
        ln = self.fast.layers[layer].ln1
        if isinstance(ln, torch.nn.LayerNorm) and x.dtype in (torch.float32, torch.float64):
            self._layer_norm_input_grads(layer, ln, g_qkv, x, out=out)
            return
        # Any other norm (RMS, pre-folded, reduced precision): autograd's own backward.
        w = self.weights[layer]
        g_norm = torch.stack(
            [
                torch.einsum("bhpe,hde->hbpd", g_qkv[s], w[name][0])
                for s, name in enumerate(("q", "k", "v"))
            ]
        ).flatten(0, 1)
        vjp = torch.func.vjp(ln, x)[1]
        out.copy_(torch.func.vmap(vjp)(g_norm)[0])

    def _layer_norm_input_grads(
        self,
        layer: int,
        ln: torch.nn.LayerNorm,
        g_qkv: Tensor,
        x: Float[Tensor, "batch pos d_model"],
        *,
        out: Float[Tensor, "n_inputs batch pos d_model"],
    ) -> None:
        """The layer norm's backward in closed form, with the projection folded in.

        With g the gradient at one head input's q (or k, v), M = (W diag(w_ln))^T and
        x_hat the normalised input, the input gradient is

            rstd * (g M - mean_d(g M) - x_hat * mean_d(g M * x_hat))

        and both means are small products of g (mean_d(g M) = g . mean_d M, and
        mean_d(g M * x_hat) = g . (M x_hat) / d_model), so only g M and the result
        are full-size: one fused multiply-add and one batched matmul, written in place.
        """
        if self._folded[layer] is None:
            self._folded[layer] = self._ln_folded(layer, ln)
        m = self._folded[layer]  # [3H, d_head, d_model]
        assert m is not None
        n, d_head = m.shape[0], m.shape[1]
        batch, seq, d_model = x.shape
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
        rstd = torch.rsqrt(var + ln.eps).reshape(1, batch * seq, 1)
        x_hat = ((x - mean) * rstd.view(batch, seq, 1)).reshape(batch * seq, d_model)
        g = g_qkv.permute(0, 2, 1, 3, 4).reshape(n, batch * seq, d_head)
        mean_gm = g @ m.mean(dim=-1, keepdim=True)  # [3H, b*p, 1]
        m_x = (x_hat @ m.permute(2, 0, 1).reshape(d_model, n * d_head)).view(batch * seq, n, d_head)
        mean_gmx = torch.einsum("nre,rne->nr", g, m_x).unsqueeze(-1) / d_model
        flat = out.view(n, batch * seq, d_model)
        torch.addcmul(rstd * mean_gm, rstd * mean_gmx, x_hat, out=flat)
        flat.baddbmm_(g * rstd, m, beta=-1)

    def _ln_folded(self, layer: int, ln: torch.nn.LayerNorm) -> Tensor:
        """(W_q, W_k, W_v per head, scaled by the norm's weight)^T: [3H, d_head, d_model]."""
        w = self.weights[layer]
        with torch.no_grad():
            stacked = torch.cat([w[name][0] for name in ("q", "k", "v")])  # [3H, d_model, d_head]
            if ln.weight is not None:
                stacked = stacked * ln.weight[None, :, None]
            return stacked.transpose(1, 2).contiguous()
