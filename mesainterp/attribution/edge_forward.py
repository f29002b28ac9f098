"""A forward pass in which every downstream node reads its own copy of the residual stream.

Edge-level methods need two things a plain forward does not give:

- the gradient of the metric at each downstream input *separately* (the q input of
  every head, the k and v input of every key/value head, every MLP input, the logits),
  although they all read the same residual stream; and
- runs in which single edges are cut: downstream node d reads its input with upstream
  u's contribution replaced by an ablated value,
  ``x_d = resid - sum_{u cut for d} (out_u - ablated_u)``.

`EdgeForward` computes both through the patching package's `FastForward` (weight views
and the model's own norm, MLP, rotary and unembedding modules), so the same models are
supported — TransformerLens-native and HuggingFace-wrapped GPT-2, GPT-NeoX, Llama,
Mistral, Qwen2, Gemma — and the same refusal messages apply. Each head input gets its
own norm, as TransformerLens's `use_split_qkv_input` does; rotary embedding and the
grouped-query repeat come after the projection, as in the model. A run can start at
any layer from a recorded base run, because cutting edges into layer l changes nothing
before layer l.

Gradients at the head inputs need no split forward: when no edge into a layer is cut,
every head input of that layer holds the same residual x, so the forward is the plain
one with a zero leaf on q, k and v (before the rotary embedding), and the gradient at
head h's q input is the norm's vector-Jacobian product at x of ``dM/dq_h @ W_q[h]``
(one batched `vjp` for all the layer's inputs). `split_leaves=True` keeps the literal
per-input copies, the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.graph import EdgeGraph
from mesainterp.errors import MesaInterpError
from mesainterp.patching.fast import FastForward, unsupported_reason
from mesainterp.shapes import ModelInput, shape_checked

__all__ = ["EdgeForward", "EdgeRun", "edge_support_reason", "graph_of"]


def edge_support_reason(model: TransformerBridge) -> str | None:
    """Why edge-level methods cannot run on `model`, or None if they can."""
    return unsupported_reason(model)


def graph_of(fast: FastForward) -> EdgeGraph:
    """The edge graph of the model `fast` reads (grouped k/v, parallel blocks, positions)."""
    return EdgeGraph(
        n_layers=fast.n_layers,
        n_heads=fast.n_heads,
        attn_only=fast.attn_only,
        n_kv_heads=None if fast.n_kv_heads == fast.n_heads else fast.n_kv_heads,
        parallel=fast.parallel,
        pos_embed=fast.arch.pos_embed is not None,
    )


@dataclass
class EdgeRun:
    """What one decomposed run produced.

    outs:     upstream outputs [b, p, d_model] in `EdgeGraph.upstream` order (positional
              embeddings expanded over the batch).
    resid:    residual stream entering each layer, then the final one (for restarts).
    leaves:   the zero tensors that take the gradients when they were requested: per
              layer one for the heads' inputs ([b, p, n_in, d_model] on split runs;
              [b, n_in, p, d_head] on q, k and v otherwise, n_in = H + 2 KV), then the
              MLP input ([b, p, d_model]); last the logits' input.
    head_inputs: per layer, the residual its heads read (shared-input runs only).
    """

    logits: Tensor
    outs: list[Tensor]
    resid: list[Tensor]
    leaves: list[Tensor] = field(default_factory=list)
    head_inputs: list[Tensor] = field(default_factory=list)


class EdgeForward:
    """Decomposed forward of a bridge; see the module docstring."""

    def __init__(self, model: TransformerBridge) -> None:
        reason = edge_support_reason(model)
        if reason is not None:
            raise MesaInterpError(f"edge-level methods cannot run on this model: {reason}")
        self.fast = FastForward(model)
        self.graph = graph_of(self.fast)
        f, g = self.fast, self.graph
        per_layer = g.inputs_per_layer + (0 if f.attn_only else 1)
        self._layer_cols = [layer * per_layer for layer in range(f.n_layers)]
        # Upstream nodes computed before each layer (and, last, before the logits).
        self._layer_rows = [
            g.n_embed + layer * (f.n_heads + (0 if f.attn_only else 1))
            for layer in range(f.n_layers + 1)
        ]

    @shape_checked
    def input_weights(
        self, layer: int
    ) -> tuple[Float[Tensor, "inputs d_head d_model"], Float[Tensor, "inputs d_head"] | None]:
        """Per head input (queries, keys, values), its projection [n_in, d_head, d_model]
        and bias [n_in, d_head] (None without biases); views of the model's weights."""
        a, dh = self.fast.layers[layer].attn, self.fast.d_head
        w = torch.cat([m.view(-1, dh, m.shape[-1]) for m in (a.w_q, a.w_k, a.w_v)])
        biases = (a.b_q, a.b_k, a.b_v)
        if all(b is None for b in biases):
            return w, None
        parts = [
            (b if b is not None else m.new_zeros(m.shape[0])).view(-1, dh)
            for b, m in zip(biases, (a.w_q, a.w_k, a.w_v), strict=True)
        ]
        return w, torch.cat(parts)

    # -- inputs --------------------------------------------------------------------------

    @shape_checked
    def embed_parts(
        self, inputs: ModelInput
    ) -> tuple[Float[Tensor, "batch pos d_model"], Float[Tensor, "batch pos d_model"] | None]:
        """(token embedding, positional embedding expanded over the batch, or None for
        models without learned positions)."""
        f = self.fast
        # Every edge method enters here: inputs go to the model's device and dtype.
        tok = f.token_embed(inputs)
        pos = f.positions(tok.shape[1])
        if pos is None:
            return tok, None
        # Detached: a view of a parameter keeps requires_grad even under no_grad.
        return tok, pos.detach().unsqueeze(0).expand(tok.shape[0], -1, -1)

    # -- runs ----------------------------------------------------------------------------

    @shape_checked
    def run(
        self,
        tok: Float[Tensor, "batch pos d_model"],
        pos: Float[Tensor, "batch pos d_model"] | None,
        *,
        cut: Shaped[Tensor, "n_up n_down *groups"] | None = None,
        ablated: list[Float[Tensor, "#batch #pos d_model"]] | None = None,
        leaves: bool = False,
        start_layer: int = 0,
        base: EdgeRun | None = None,
        split_leaves: bool = False,
        cut_groups: Int[Tensor, "batch pos"] | None = None,
    ) -> EdgeRun:
        """One decomposed run.

        cut:      float or bool [n_upstream, n_downstream]; 1 where the edge reads the
                  ablated value instead of the upstream node's output in this run.
                  With `cut_groups`, [n_upstream, n_downstream, n_groups]: the edge is
                  cut only at the positions of that group.
        cut_groups: long [b, p], the group (0 .. n_groups - 1) of each example's position
                  (`attribution.positions`); the edge u -> d at group g replaces u's
                  output by its ablated value in d's input at exactly those positions.
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
        if cut_f is not None and cut_f.ndim != (2 if cut_groups is None else 3):
            raise MesaInterpError(
                f"cut: expected [n_upstream, n_downstream{'' if cut_groups is None else ', n_groups'}]"
                f", got shape {tuple(cut_f.shape)}"
            )
        groups = None if cut_groups is None else cut_groups.to(tok.device)
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
            outs = [tok] if pos is None else [tok, pos]
            resid = tok if pos is None else tok + pos
            resids = []
        # Leaves are made with resid.new_zeros: on the model's device and in its dtype.
        if leaves and cut is not None:
            split_leaves = True  # cut layers give each head input its own value
        leaf_list: list[Tensor] = []
        head_inputs: list[Tensor] = []
        batch, seq, d_model = resid.shape
        h, kv, n_in = f.n_heads, f.n_kv_heads, g.inputs_per_layer

        def delta(cols: slice, n_rows: int) -> Tensor | None:
            if cut_f is None:
                return None
            block = cut_f[:n_rows, cols]
            rows = torch.nonzero(block.flatten(1).any(dim=1)).flatten().tolist()
            if not rows:
                return None
            assert ablated is not None
            diffs = torch.stack([outs[r] - ablated[r] for r in rows])  # [r, b, p, d]
            if groups is None:
                return torch.einsum("rbpd,rj->jbpd", diffs, block[rows])
            # Each position reads the cut of its own group: [r, j, G] -> [r, j, b, p].
            return torch.einsum("rbpd,rjbp->jbpd", diffs, block[rows][:, :, groups])

        for layer in range(start_layer, f.n_layers):
            p = f.layers[layer]
            resids.append(resid)
            col0, n_rows = self._layer_cols[layer], self._layer_rows[layer]
            d = delta(slice(col0, col0 + n_in), n_rows)
            if d is None and not (leaves and split_leaves):
                # Every head reads the same input: one matmul per projection.
                x = p.ln1(resid)
                q, k, v = (
                    f.project(x, w, b).transpose(1, 2)
                    for w, b in ((p.attn.w_q, p.attn.b_q), (p.attn.w_k, p.attn.b_k),
                                 (p.attn.w_v, p.attn.b_v))
                )  # fmt: skip
                if leaves:
                    leaf = q.new_zeros(batch, n_in, seq, f.d_head).requires_grad_()
                    leaf_list.append(leaf)
                    head_inputs.append(resid.detach())
                    q, k, v = q + leaf[:, :h], k + leaf[:, h : h + kv], v + leaf[:, h + kv :]
            else:
                xs = resid.unsqueeze(2).expand(batch, seq, n_in, d_model)
                if d is not None:
                    xs = xs - d.permute(1, 2, 0, 3)
                if leaves:
                    leaf = resid.new_zeros(batch, seq, n_in, d_model).requires_grad_()
                    leaf_list.append(leaf)
                    xs = xs + leaf
                w, b = self.input_weights(layer)
                qkv = torch.einsum("bpnd,ned->bnpe", p.ln1(xs), w)
                if b is not None:
                    qkv = qkv + b.unsqueeze(1)
                q, k, v = qkv[:, :h], qkv[:, h : h + kv], qkv[:, h + kv :]
            q, k = f.rotate(q, k)
            z = f.attend(layer, q, k, v)  # [b, H, p, dh]
            w_o = p.attn.w_o.view(d_model, h, f.d_head)
            results = torch.einsum("bhpe,dhe->hbpd", z, w_o)
            outs.extend(results.unbind(0))
            after_attn = resid + results.sum(0)
            if p.attn.b_o is not None:
                after_attn = after_attn + p.attn.b_o
            if not f.attn_only:
                d = delta(slice(col0 + n_in, col0 + n_in + 1), n_rows + (0 if f.parallel else h))
                mlp_in = resid if f.parallel else after_attn
                x = mlp_in if d is None else mlp_in - d[0]
                if leaves:
                    leaf = resid.new_zeros(batch, seq, d_model).requires_grad_()
                    leaf_list.append(leaf)
                    x = x + leaf
                mlp_out = f.mlp(layer, x)
                outs.append(mlp_out)
                after_attn = after_attn + mlp_out
            resid = after_attn
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

    @shape_checked
    def leaf_grads(
        self, run: EdgeRun, value: Float[Tensor, ""]
    ) -> Float[Tensor, "n_down batch pos d_model"]:
        """d value / d(each downstream input), in `EdgeGraph.downstream` order.

        Uses `torch.autograd.grad`, so no `.grad` of the model's parameters is touched.
        Each gradient is written once, straight into the result (copies of this
        [n_down, b, p, d_model] buffer were a third of EAP's time).
        """
        raw = torch.autograd.grad(value, run.leaves)
        f = self.fast
        last = raw[-1]
        out = last.new_empty((self.graph.n_downstream, *last.shape))
        n_inputs = self.graph.inputs_per_layer
        row, i = 0, 0
        for layer in range(f.n_layers):
            g = raw[i]
            i += 1
            block = out[row : row + n_inputs]
            if run.head_inputs:  # [b, n_in, p, d_head]: back through W and the norm
                self._head_input_grads(layer, g, run.head_inputs[layer], out=block)
            else:  # [b, p, n_in, d] -> one row per input
                block.copy_(g.permute(2, 0, 1, 3))
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
        out: Float[Tensor, "inputs batch pos d_model"],
    ) -> None:
        """Gradients at the layer's head inputs from those at q, k and v (see the module
        docstring), written into `out` in q, k, v then head order."""
        ln = self.fast.layers[layer].ln1
        if isinstance(ln, torch.nn.LayerNorm) and x.dtype in (torch.float32, torch.float64):
            self._layer_norm_input_grads(layer, ln, g_qkv, x, out=out)
            return
        # Any other norm (RMS, Gemma's, pre-folded, reduced precision): autograd's backward.
        w, _ = self.input_weights(layer)
        g_norm = torch.einsum("bnpe,ned->nbpd", g_qkv, w)
        vjp = torch.func.vjp(ln, x)[1]
        out.copy_(torch.func.vmap(vjp)(g_norm)[0])

    def _layer_norm_input_grads(
        self,
        layer: int,
        ln: torch.nn.LayerNorm,
        g_qkv: Tensor,
        x: Float[Tensor, "batch pos d_model"],
        *,
        out: Float[Tensor, "inputs batch pos d_model"],
    ) -> None:
        """The layer norm's backward in closed form, with the projection folded in.

        With g the gradient at one head input's q (or k, v), M = (W diag(w_ln))^T and
        x_hat the normalised input, the input gradient is

            rstd * (g M - mean_d(g M) - x_hat * mean_d(g M * x_hat))

        and both means are small products of g (mean_d(g M) = g . mean_d M, and
        mean_d(g M * x_hat) = g . (M x_hat) / d_model), so only g M and the result
        are full-size: one fused multiply-add and one batched matmul, written in place.
        M is formed per call (a transient [n_in, d_head, d_model]), not kept.
        """
        w, _ = self.input_weights(layer)
        m = w if ln.weight is None else w * ln.weight.detach()
        n, d_head = m.shape[0], m.shape[1]
        batch, seq, d_model = x.shape
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
        rstd = torch.rsqrt(var + ln.eps).reshape(1, batch * seq, 1)
        x_hat = ((x - mean) * rstd.view(batch, seq, 1)).reshape(batch * seq, d_model)
        g = g_qkv.permute(1, 0, 2, 3).reshape(n, batch * seq, d_head)
        mean_gm = g @ m.mean(dim=-1, keepdim=True)  # [n, b*p, 1]
        m_x = (x_hat @ m.permute(2, 0, 1).reshape(d_model, n * d_head)).view(batch * seq, n, d_head)
        mean_gmx = torch.einsum("nre,rne->nr", g, m_x).unsqueeze(-1) / d_model
        flat = out.view(n, batch * seq, d_model)
        torch.addcmul(rstd * mean_gm, rstd * mean_gmx, x_hat, out=flat)
        flat.baddbmm_(g * rstd, m, beta=-1)
