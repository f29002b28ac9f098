"""Logit lens and tuned lens: what the residual stream at each layer would predict.

Layer l's residual is the stream entering block l (`blocks.l.hook_resid_pre`); the
last row is the stream the unembedding reads (`ln_final.hook_in`), so the lens at
the last row is the model's own logits. Decoding goes through the model's own final
norm and unembedding modules (a bridge's `ln_final` and `unembed`, HuggingFace-wrapped
or native), with Gemma-2-style output soft-capping applied when the model has it.

Tuned lens (after Belrose et al. 2023): one affine map per layer, fitted by ridge
least squares from that layer's residual to the final residual on training inputs,
then (with `kl_steps` > 0, the default of `compare_lenses`) refined by L-BFGS on
KL(final || lens) from that start, and decoded like the logit lens. Least squares
alone can lose to the logit lens where a layer cannot know the answer yet (the
embeddings): the mean final residual, renormalised, is more confident than the mean
final distribution. The refinement takes gradients of the maps only, never of the
model's weights. `compare_lenses` reports both lenses' KL to the
model's final distribution on held-out inputs, per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError
from mesainterp.patching.engine import capture

__all__ = [
    "LensComparison",
    "TunedLens",
    "accumulated_resid",
    "compare_lenses",
    "decode",
    "fit_tuned_lens",
    "kl_to_final",
    "logit_lens",
]


def _stages(model: TransformerBridge) -> list[str]:
    n = int(model.cfg.n_layers)
    return [f"blocks.{layer}.hook_resid_pre" for layer in range(n)] + ["ln_final.hook_in"]


@torch.no_grad()
def accumulated_resid(
    model: TransformerBridge, inputs: Tensor
) -> tuple[Tensor, Float[Tensor, "stage batch pos d_model"]]:
    """The model's logits and its residual stream entering every block, then the final one."""
    names = _stages(model)
    logits, store = capture(model, inputs, names)
    return logits, torch.stack([store[name] for name in names])


@torch.no_grad()
def decode(model: TransformerBridge, resid: Tensor) -> Tensor:
    """Logits of residual vectors [..., d_model] through the final norm and unembedding."""
    return _decode(model, resid)


def _decode(model: TransformerBridge, resid: Tensor) -> Tensor:
    logits: Tensor = model.unembed(model.ln_final(resid))
    cap = float(getattr(model.cfg, "output_logits_soft_cap", -1.0) or -1.0)
    if cap > 0:
        logits = cap * torch.tanh(logits / cap)
    return logits


def logit_lens(model: TransformerBridge, inputs: Tensor) -> Float[Tensor, "stage batch pos vocab"]:
    """Logit lens at every layer and position: row l decodes the stream entering block l,
    the last row the final stream (equal to the model's logits)."""
    _, resid = accumulated_resid(model, inputs)
    return decode(model, resid)


def kl_to_final(lens_logits: Tensor, final_logits: Tensor) -> Tensor:
    """KL(final || lens) per stage and position, mean over the batch: [stage, pos]."""
    p = torch.log_softmax(final_logits.float(), dim=-1)
    q = torch.log_softmax(lens_logits.float(), dim=-1)
    return (p.exp() * (p - q)).sum(-1).mean(1)


@dataclass(frozen=True)
class TunedLens:
    """One affine map per stage: resid_l @ weight[l] + bias[l] approximates the final stream."""

    weight: Float[Tensor, "stage d_model d_model"]
    bias: Float[Tensor, "stage d_model"]

    @torch.no_grad()
    def __call__(self, model: TransformerBridge, inputs: Tensor) -> Tensor:
        """Tuned-lens logits [stage, batch, pos, vocab]."""
        _, resid = accumulated_resid(model, inputs)
        w, b = self.weight.to(resid), self.bias.to(resid)
        mapped = torch.einsum("lbpd,lde->lbpe", resid, w) + b[:, None, None]
        return decode(model, mapped)


def _refine(
    model: TransformerBridge, x: Tensor, final_logp: Tensor, w: Tensor, b: Tensor, steps: int
) -> tuple[Tensor, Tensor]:
    """L-BFGS on KL(final || decode(x @ w + b)) over the map only."""
    w = w.contiguous().clone().requires_grad_(True)
    b = b.contiguous().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        with torch.enable_grad():
            logq = torch.log_softmax(_decode(model, x @ w + b).float(), dim=-1)
            loss = (final_logp.exp() * (final_logp - logq)).sum(-1).mean()
            gw, gb = torch.autograd.grad(loss, [w, b])
            w.grad, b.grad = gw.contiguous(), gb.contiguous()
        return loss.detach()

    opt.step(closure)  # type: ignore[no-untyped-call]
    return w.detach(), b.detach()


def fit_tuned_lens(
    model: TransformerBridge,
    inputs: Tensor,
    *,
    ridge: float = 1e-3,
    positions: Any = None,
    kl_steps: int = 0,
) -> TunedLens:
    """Fit a `TunedLens` on `inputs` (all positions, or `positions`): ridge least squares,
    then `kl_steps` L-BFGS iterations on the KL to the final distribution."""
    if not ridge >= 0:
        raise ConfigError("ridge", f"got {ridge!r}", "a number >= 0")
    if isinstance(kl_steps, bool) or not isinstance(kl_steps, int) or kl_steps < 0:
        raise ConfigError("kl_steps", f"got {kl_steps!r}", "an int >= 0")
    _, resid = accumulated_resid(model, inputs)
    resid = resid.double()
    if positions is not None:
        resid = resid[:, :, positions]
    stages, d = resid.shape[0], resid.shape[-1]
    target = resid[-1].reshape(-1, d)
    weights, biases = [], []
    for layer in range(stages):
        x = resid[layer].reshape(-1, d)
        x1 = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
        gram = x1.T @ x1
        # Scale the ridge to the data so one value serves every width and norm.
        reg = ridge * gram.diagonal().mean() * torch.eye(d + 1, dtype=x.dtype)
        reg[-1, -1] = 0.0  # the bias is not shrunk
        solution = torch.linalg.lstsq(gram + reg, x1.T @ target).solution
        w, b = solution[:-1].float(), solution[-1].float()
        if kl_steps and layer < stages - 1:
            final_logp = torch.log_softmax(decode(model, target.float()).float(), dim=-1)
            w, b = _refine(model, x.float(), final_logp, w, b, kl_steps)
        weights.append(w)
        biases.append(b)
    return TunedLens(weight=torch.stack(weights).float(), bias=torch.stack(biases).float())


@dataclass(frozen=True)
class LensComparison:
    """Held-out KL(final || lens), mean over examples and positions, per stage."""

    logit_lens_kl: list[float]
    tuned_lens_kl: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"logit_lens_kl": self.logit_lens_kl, "tuned_lens_kl": self.tuned_lens_kl}


def compare_lenses(
    model: TransformerBridge,
    train_inputs: Tensor,
    test_inputs: Tensor,
    *,
    ridge: float = 1e-3,
    positions: Any = None,
    kl_steps: int = 50,
) -> LensComparison:
    """Fit the tuned lens on `train_inputs`, then both lenses' KL to the final
    distribution on `test_inputs`, at `positions` (default every position)."""
    lens = fit_tuned_lens(model, train_inputs, ridge=ridge, positions=positions, kl_steps=kl_steps)
    final, resid = accumulated_resid(model, test_inputs)
    plain, tuned = decode(model, resid), lens(model, test_inputs)
    where = slice(None) if positions is None else positions
    plain_kl = kl_to_final(plain[:, :, where], final[:, where]).mean(-1)
    tuned_kl = kl_to_final(tuned[:, :, where], final[:, where]).mean(-1)
    return LensComparison(
        logit_lens_kl=[float(v) for v in plain_kl], tuned_lens_kl=[float(v) for v in tuned_kl]
    )
