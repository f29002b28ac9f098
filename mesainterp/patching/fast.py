"""A layer-by-layer forward over a native bridge's weights that skips unchanged work.

A patched run differs from its base run only at and after the patched layer, and —
under causal attention — only at and after the patched position. `FastForward`
caches the base run once (the residual entering every block and every block's keys
and values) and recomputes a patched run from the patched layer on, for the query
positions >= p only, attending over the cached keys/values of positions < p. No hooks,
no autograd.

It reads the weights of a TransformerLens-native model (`TransformerBridge.boot_native`)
and refuses anything it does not implement (rotary, grouped-query attention, gated or
SoLU-LN MLPs, soft-capping, bidirectional attention, a bridge from HuggingFace, models
with hooks installed): `unsupported_reason` says why, and the engine then falls back to
the hook loop. The hook loop is also the oracle in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.patching.setters import apply_site
from mesainterp.sites.site import Site

__all__ = ["BaseState", "FastForward", "entry_point", "unsupported_reason"]

_ACTS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


def _unwrap(module: Any) -> Any:
    """The torch module a bridge component wraps (bridges nest `_original_component`)."""
    while hasattr(module, "_original_component"):
        module = module._original_component
    return module


def unsupported_reason(model: TransformerBridge) -> str | None:
    """Why the fast forward cannot run this model exactly, or None if it can."""
    try:
        from transformer_lens.model_bridge.sources.native.model import (
            NativeAttention,
            NativeMLP,
            NativeModel,
        )
    except ImportError:  # pragma: no cover - other TransformerLens layouts
        return "this TransformerLens has no native model source"
    native = getattr(model, "original_model", None)
    if not isinstance(native, NativeModel):
        return f"not a TransformerLens-native model (wraps {type(native).__name__})"
    cfg = model.cfg
    if native.rotary is not None or native.pos is None:
        return "rotary positional embeddings are not implemented in the fast path"
    if float(getattr(cfg, "output_logits_soft_cap", -1.0) or -1.0) > 0:
        return "output logit soft-capping is not implemented in the fast path"
    for i, block in enumerate(native.layers):
        attn = _unwrap(block.attn)
        if not isinstance(attn, NativeAttention):
            return f"layer {i}: unknown attention module {type(attn).__name__}"
        if attn.kv_repeats != 1:
            return "grouped-query attention is not implemented in the fast path"
        if attn.attn_scores_soft_cap > 0:
            return "attention soft-capping is not implemented in the fast path"
        if not attn.causal:
            return "bidirectional attention: the position shortcut needs causal attention"
        if not cfg.attn_only:
            mlp = _unwrap(block.mlp)
            if not isinstance(mlp, NativeMLP) or mlp.ln is not None:
                return f"layer {i}: MLP type {type(mlp).__name__} is not implemented"
            if (cfg.act_fn or "gelu").lower() not in _ACTS:
                return f"activation {cfg.act_fn!r} is not implemented in the fast path"
    for name, module in model.named_modules():
        if isinstance(module, HookPoint) and (module._forward_hooks or module._backward_hooks):
            return f"hooks are installed on {name}; the fast path would bypass them"
    return None


@dataclass(frozen=True)
class _Layer:
    ln1: nn.Module
    w_q: Tensor  # [d_model, H*dh] (transposed once for x @ w)
    b_q: Tensor
    w_k: Tensor
    b_k: Tensor
    w_v: Tensor
    b_v: Tensor
    w_o: Tensor  # [H*dh, d_model]
    b_o: Tensor
    scale: float
    ln2: nn.Module | None
    w_in: Tensor | None
    b_in: Tensor | None
    w_out: Tensor | None
    b_out: Tensor | None


@dataclass
class BaseState:
    """What a patched run reuses from its base run."""

    resid_pre: list[Tensor]  # per layer [b, S, d]
    keys: list[Tensor]  # per layer [b, H, S, dh]
    values: list[Tensor]  # per layer [b, H, S, dh]
    logits: Tensor  # [b, S, vocab]
    z: dict[int, Tensor]  # chosen layers: [b, S, H, dh]
    resid_mid: dict[int, Tensor]  # chosen layers: [b, S, d]


# Where a patched run re-enters its first layer: sites after the attention core
# reuse the base run's z (skipping q/k/v and softmax), sites after the attention
# block reuse its resid_mid (skipping attention entirely).
_ENTRY = {"z": "z", "attn_out": "z", "resid_mid": "mid", "mlp_out": "mid", "resid_post": "mid"}


def entry_point(site: Site) -> str:
    """'pre', 'z' or 'mid': the stage of its layer a patched run starts from."""
    return _ENTRY.get(site.kind, "pre")


def _linear_parts(module: Any) -> tuple[Tensor, Tensor]:
    linear = _unwrap(module)
    assert isinstance(linear, nn.Linear)
    bias = linear.bias if linear.bias is not None else linear.weight.new_zeros(linear.out_features)
    return linear.weight.detach().t().contiguous(), bias.detach()


class FastForward:
    """Exact, hook-free forward of a native bridge, restartable at any layer and position."""

    def __init__(self, model: TransformerBridge) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"fast forward unsupported: {reason}")
        native: Any = model.original_model
        cfg = model.cfg
        self.n_layers = int(cfg.n_layers)
        self.n_heads = int(cfg.n_heads)
        self.d_head = int(cfg.d_head)
        self.attn_only = bool(cfg.attn_only)
        self.tok_embed = _unwrap(native.tok_embed)
        self.pos_embed = _unwrap(native.pos)
        self.ln_out = _unwrap(native.ln_out)
        self.head = _unwrap(native.head)
        self.act = _ACTS[(cfg.act_fn or "gelu").lower()]
        self.layers: list[_Layer] = []
        for block in native.layers:
            attn = _unwrap(block.attn)
            w_q, b_q = _linear_parts(attn.q)
            w_k, b_k = _linear_parts(attn.k)
            w_v, b_v = _linear_parts(attn.v)
            w_o, b_o = _linear_parts(attn.o)
            if self.attn_only:
                ln2 = w_in = b_in = w_out = b_out = None
            else:
                mlp = _unwrap(block.mlp)
                ln2 = _unwrap(block.ln2)
                w_in, b_in = _linear_parts(mlp.fc_in)
                w_out, b_out = _linear_parts(mlp.fc_out)
            self.layers.append(
                _Layer(
                    ln1=_unwrap(block.ln1),
                    w_q=w_q, b_q=b_q, w_k=w_k, b_k=b_k, w_v=w_v, b_v=b_v, w_o=w_o, b_o=b_o,
                    scale=float(attn.scale),
                    ln2=ln2, w_in=w_in, b_in=b_in, w_out=w_out, b_out=b_out,
                )
            )  # fmt: skip
        n_ctx = int(cfg.n_ctx)
        weight = self.tok_embed.weight
        self.device, self.dtype = weight.device, weight.dtype
        self.mask = torch.triu(
            torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=self.device), diagonal=1
        )

    # -- pieces -------------------------------------------------------------------------

    def embed(self, inputs: Tensor) -> Float[Tensor, "batch pos d_model"]:
        """Residual entering block 0 (token or given embedding plus positional embedding)."""
        seq = inputs.shape[1]
        inputs = (
            inputs.to(self.device, self.dtype)
            if inputs.is_floating_point()
            else inputs.to(self.device)
        )
        x = inputs if inputs.is_floating_point() else self.tok_embed(inputs)
        return x + self.pos_embed.weight[:seq]

    def _heads(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        return (x @ w + b).view(batch, seq, self.n_heads, self.d_head)

    def unembed(self, resid: Tensor) -> Tensor:
        return self.head(self.ln_out(resid))

    # -- runs ---------------------------------------------------------------------------

    @torch.no_grad()
    def run_base(
        self, inputs: Tensor, *, keep_z: Iterable[int] = (), keep_mid: Iterable[int] = ()
    ) -> BaseState:
        """The full base run, caching residuals and keys/values of every layer and the
        z / resid_mid of the layers named (what later patched runs restart from)."""
        resid = self.embed(inputs)
        state = BaseState(resid_pre=[], keys=[], values=[], logits=resid, z={}, resid_mid={})
        keep = (set(keep_z), set(keep_mid))
        state.logits = self._run(resid, 0, 0, record=state, keep=keep)
        return state

    @torch.no_grad()
    def run_patched(
        self, state: BaseState, site: Site, replacement: Tensor
    ) -> Float[Tensor, "batch pos vocab"]:
        """Logits of the base run with `site` set to `replacement` (in the bridge's layout,
        full shape of the hook activation)."""
        start = site.first_pos
        entry = entry_point(site)
        if entry == "z" and site.layer not in state.z:
            entry = "pre"
        if entry == "mid" and site.layer not in state.resid_mid:
            entry = "pre"
        resid = state.resid_pre[site.block][:, start:]
        tail = self._run(
            resid, site.block, start, base=state, patch=(site, replacement), entry=entry
        )
        if start == 0:
            return tail
        return torch.cat([state.logits[:, :start], tail], dim=1)

    def _run(
        self,
        resid: Tensor,
        first_layer: int,
        start: int,
        *,
        record: BaseState | None = None,
        keep: tuple[set[int], set[int]] = (set(), set()),
        base: BaseState | None = None,
        patch: tuple[Site, Tensor] | None = None,
        entry: str = "pre",
    ) -> Tensor:
        """Blocks first_layer.. on query positions start.. of `resid` (already sliced).

        With `record` the run stores what later patched runs reuse; with `base` the
        keys/values of positions < start, and the first layer's z or resid_mid when
        `entry` says so, come from the base run.
        """
        site, replacement = patch if patch is not None else (None, None)

        def maybe(kind: str, layer: int, act: Tensor) -> Tensor:
            # `act` is in the bridge's layout restricted to positions >= start.
            if site is None or site.kind != kind or site.layer != layer:
                return act
            assert replacement is not None
            return apply_site(site, act, replacement, start=start)

        for layer in range(first_layer, self.n_layers):
            p = self.layers[layer]
            stage = entry if layer == first_layer else "pre"
            if stage == "mid":
                assert base is not None
                resid = base.resid_mid[layer][:, start:]
            else:
                resid = maybe("resid_pre", layer, resid)
                if stage == "z":
                    assert base is not None
                    z = base.z[layer][:, start:]
                else:
                    z = self._attend(p, layer, resid, start, record, base, maybe)
                if record is not None and layer in keep[0]:
                    record.z[layer] = z
                z = maybe("z", layer, z)
                batch, seq = z.shape[:2]
                attn_out = maybe("attn_out", layer, z.reshape(batch, seq, -1) @ p.w_o + p.b_o)
                resid = resid + attn_out
            if not self.attn_only:
                assert p.ln2 is not None and p.w_in is not None and p.b_in is not None
                assert p.w_out is not None and p.b_out is not None
                resid = maybe("resid_mid", layer, resid)
                if record is not None and layer in keep[1]:
                    record.resid_mid[layer] = resid
                hidden = self.act(p.ln2(resid) @ p.w_in + p.b_in)
                resid = resid + maybe("mlp_out", layer, hidden @ p.w_out + p.b_out)
            resid = maybe("resid_post", layer, resid)
        return self.unembed(resid)

    def _attend(
        self,
        p: _Layer,
        layer: int,
        resid: Tensor,
        start: int,
        record: BaseState | None,
        base: BaseState | None,
        maybe: Callable[[str, int, Tensor], Tensor],
    ) -> Tensor:
        """Attention core for queries >= start; returns z [b, s, H, dh]."""
        if record is not None:
            record.resid_pre.append(resid)
        x = p.ln1(resid)
        q = maybe("q", layer, self._heads(x, p.w_q, p.b_q))
        k = maybe("k", layer, self._heads(x, p.w_k, p.b_k))
        v = maybe("v", layer, self._heads(x, p.w_v, p.b_v))
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [b, H, s, dh]
        if record is not None:
            record.keys.append(k)
            record.values.append(v)
        if base is not None and start > 0:
            k = torch.cat([base.keys[layer][:, :, :start], k], dim=2)
            v = torch.cat([base.values[layer][:, :, :start], v], dim=2)
        n_keys = k.shape[2]
        scores = (q @ k.transpose(-2, -1)) / p.scale
        block_mask = self.mask[start:n_keys, :n_keys]
        scores = scores.masked_fill(block_mask, float("-inf"))
        pattern = torch.softmax(scores, dim=-1).masked_fill(block_mask, 0.0)
        pattern = maybe("pattern", layer, pattern)
        return (pattern @ v).transpose(1, 2)  # [b, s, H, dh]
