"""Direct logit attribution: each head's and MLP's direct effect on a logit difference.

The final residual at an answer position is a sum of parts: the embeddings (the
stream entering block 0), every head's output z_h @ W_O[h], every attention
layer's output bias, every MLP's output. Each part is pushed through the final norm
**with its scale frozen** at the value the full residual gave it (the norm is then
linear, so the parts' images add up) and through the unembedding without its bias.
What is left, the norm's bias and the unembedding's bias, is the `bias` term, so

    sum(parts) + bias = the model's logit difference        (up to float error)

which `direct_logit_attribution` checks on every call. The frozen map is read off the
model's own modules, whatever the norm (LayerNorm, RMSNorm, Gemma's 1 + w): with
s(v) the scale the norm reports for v (`ln_final.hook_scale`) and N(0) its bias,
N_frozen(v) = (N(v) - N(0)) * s(v) / s(x). Models whose residual is not a plain sum
of these parts (post-norms) or whose logits are not linear in it (soft-capping) are
refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.patching.engine import capture
from mesainterp.patching.fast_arch import read_architecture
from mesainterp.patching.hooks import hook_context

__all__ = ["DirectLogitAttribution", "direct_logit_attribution"]

# Relative error allowed when the parts are summed back (float32 models).
SUM_TOL = 1e-3


@dataclass(frozen=True)
class DirectLogitAttribution:
    """Per part and example: the direct contribution to the logit difference.

    names:  "embed", "L{l}H{h}", "L{l} attn bias", "M{l}"
    values: [part, batch]; bias: [batch] (norm and unembedding biases);
    total:  [batch] the model's own logit difference.
    """

    names: list[str]
    values: Float[Tensor, "part batch"]
    bias: Float[Tensor, " batch"]
    total: Float[Tensor, " batch"]

    def to_frame(self) -> pd.DataFrame:
        """Mean contribution per part, with the bias and the total as the last rows."""
        means = [float(v) for v in self.values.mean(1)]
        return pd.DataFrame(
            {
                "part": [*self.names, "bias", "total"],
                "mean": [*means, float(self.bias.mean()), float(self.total.mean())],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.to_frame().to_dict(orient="records"), "n": int(self.total.numel())}


def _scale(model: TransformerBridge, resid: Tensor) -> tuple[Tensor, Tensor]:
    """The final norm's output and scale for `resid` (scale 1 for a norm-free model)."""
    got: dict[str, Tensor] = {}

    def keep(act: Tensor, *, hook: Any) -> None:
        got["s"] = act.detach()

    if "ln_final.hook_scale" not in model.hook_dict:
        return model.ln_final(resid), torch.ones(
            *resid.shape[:-1], 1, dtype=resid.dtype, device=resid.device
        )
    with hook_context(model, fwd=[("ln_final.hook_scale", keep)]):
        out = model.ln_final(resid)
    return out, got["s"]


@torch.no_grad()
def direct_logit_attribution(
    model: TransformerBridge,
    inputs: Tensor,
    answer_pos: Int[Tensor, " batch"],
    answer: Int[Tensor, " batch"],
    other: Int[Tensor, " batch"] | None = None,
) -> DirectLogitAttribution:
    """Direct contributions to logit[answer] - logit[other] (or logit[answer] alone) at
    `answer_pos` of every example (see the module docstring)."""
    cap = float(getattr(model.cfg, "output_logits_soft_cap", -1.0) or -1.0)
    if cap > 0:
        raise MesaInterpError(
            f"direct logit attribution needs logits linear in the final residual; this model "
            f"soft-caps them (output_logits_soft_cap={cap})"
        )
    arch = read_architecture(model)
    n_layers, n_heads, d_head = arch.n_layers, arch.n_heads, arch.d_head
    names = ["blocks.0.hook_resid_pre", "ln_final.hook_in"]
    for layer in range(n_layers):
        names += [f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_attn_out"]
        if not arch.attn_only:
            names.append(f"blocks.{layer}.hook_mlp_out")
    logits, store = capture(model, inputs, names)
    dev = logits.device
    rows = torch.arange(inputs.shape[0], device=dev)
    pos = answer_pos.to(dev, torch.long)
    answer = answer.to(dev)

    def at(name: str) -> Tensor:
        return store[name][rows, pos]

    parts, labels = [at("blocks.0.hook_resid_pre")], ["embed"]
    for layer in range(n_layers):
        weights = arch.layers[layer].attn
        z = at(f"blocks.{layer}.attn.hook_z")  # [b, H, dh]
        w_o = weights.w_o.reshape(-1, n_heads, d_head)  # [d_model, H, dh]
        heads = torch.einsum("bhd,mhd->hbm", z.to(w_o.dtype), w_o)
        b_o = (
            weights.b_o if weights.b_o is not None else torch.zeros(w_o.shape[0], device=w_o.device)
        )
        attn_sum = heads.sum(0) + b_o
        _check(attn_sum, at(f"blocks.{layer}.hook_attn_out"), f"layer {layer}'s head outputs")
        parts += [*heads, b_o.expand_as(attn_sum)]
        labels += [f"L{layer}H{h}" for h in range(n_heads)] + [f"L{layer} attn bias"]
        if not arch.attn_only:
            parts.append(at(f"blocks.{layer}.hook_mlp_out"))
            labels.append(f"M{layer}")
    stack = torch.stack([p.to(logits.dtype) for p in parts])  # [part, b, d]
    final = at("ln_final.hook_in")
    _check(stack.sum(0), final, "the embeddings, head outputs, biases and MLP outputs")
    _, s_final = _scale(model, final)
    normed, s_parts = _scale(model, stack)
    zero = model.ln_final(torch.zeros_like(final[:1]))  # the norm's bias, N(0)
    frozen = (normed - zero) * s_parts / s_final
    unembed_zero = model.unembed(torch.zeros_like(final[:1]))
    per_part = model.unembed(frozen) - unembed_zero
    bias = model.unembed(zero.expand_as(final))
    direction = torch.zeros(inputs.shape[0], per_part.shape[-1], dtype=per_part.dtype, device=dev)
    direction[rows, answer] = 1.0
    if other is not None:
        direction[rows, other.to(dev)] -= 1.0
    values = (per_part * direction).sum(-1)
    bias_term = (bias * direction).sum(-1)
    total = (logits[rows, pos] * direction).sum(-1)
    _check(values.sum(0) + bias_term, total, "the parts' logit contributions")
    return DirectLogitAttribution(
        names=labels, values=values.float(), bias=bias_term.float(), total=total.float()
    )


def _check(summed: Tensor, actual: Tensor, what: str) -> None:
    """Refuse a model whose parts do not add up: post-norms or other non-additive blocks."""
    err = float((summed - actual).abs().max())
    scale = float(actual.abs().max()) + 1e-6
    if err > SUM_TOL * scale + 1e-5:
        raise MesaInterpError(
            f"direct logit attribution: {what} do not sum to what the model computed "
            f"(max error {err:.2e} against values up to {scale:.2e}); this architecture's "
            f"residual stream is not a plain sum of its parts"
        )
