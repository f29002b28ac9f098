"""A layer-by-layer forward over a bridge's own weights that skips unchanged work.

A patched run differs from its base run only at and after the patched layer, and —
under causal attention — only at and after the patched position. `FastForward`
caches the base run once (the residual entering every block and every block's keys
and values) and recomputes a patched run from the patched layer on, for the query
positions >= p only, attending over the cached keys/values of positions < p. No hooks,
no autograd.

It reads the model through `fast_arch.read_architecture`: weight views (nothing is
copied) and the model's own norm, MLP, embedding and rotary modules, for
TransformerLens-native bridges and HuggingFace-wrapped GPT-2, GPT-NeoX, Llama, Mistral,
Qwen2 and Gemma. Anything else (soft-capping, sandwich norms, bidirectional attention,
models with hooks installed, ...) is refused: `unsupported_reason` says why, and the
engine then falls back to the hook loop. The hook loop is also the oracle in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.patching.fast_arch import Architecture, Layer, Unsupported, read_architecture
from mesainterp.patching.setters import apply_site
from mesainterp.shapes import ModelInput, shape_checked
from mesainterp.sites.site import Site

__all__ = ["BaseState", "FastForward", "entry_point", "unsupported_reason"]


def _read(model: TransformerBridge) -> tuple[Architecture | None, str | None]:
    try:
        arch = read_architecture(model)
    except Unsupported as exc:
        return None, str(exc)
    for name, module in model.named_modules():
        if isinstance(module, HookPoint) and (module._forward_hooks or module._backward_hooks):
            return None, f"hooks are installed on {name}; the fast path would bypass them"
    return arch, None


def unsupported_reason(model: TransformerBridge) -> str | None:
    """Why the fast forward cannot run this model exactly, or None if it can."""
    return _read(model)[1]


@dataclass
class BaseState:
    """What a patched run reuses from its base run."""

    resid_pre: list[Tensor]  # per layer [b, S, d]
    keys: list[Tensor]  # per layer [b, KV, S, dh], rotary applied
    values: list[Tensor]  # per layer [b, KV, S, dh]
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


class FastForward:
    """Exact, hook-free forward of a bridge, restartable at any layer and position."""

    def __init__(self, model: TransformerBridge) -> None:
        arch, reason = _read(model)
        if arch is None:
            raise MesaInterpError(f"fast forward unsupported: {reason}")
        self.arch = arch
        self.n_layers = arch.n_layers
        self.n_heads = arch.n_heads
        self.n_kv_heads = arch.n_kv_heads
        self.d_head = arch.d_head
        self.d_model = arch.d_model
        self.attn_only = arch.attn_only
        self.parallel = arch.parallel
        self.layers: list[Layer] = arch.layers
        self.device, self.dtype = arch.device, arch.dtype
        n_ctx = arch.max_seq
        self.mask = torch.triu(
            torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=self.device), diagonal=1
        )

    # -- pieces -------------------------------------------------------------------------

    @shape_checked
    def token_embed(self, inputs: ModelInput) -> Float[Tensor, "batch pos d_model"]:
        """The token embedding of token ids (or float inputs, taken as that embedding),
        on the model's device and in its dtype; refuses inputs longer than the model's."""
        seq = inputs.shape[1]
        if seq > self.arch.max_seq:
            raise MesaInterpError(
                f"inputs have {seq} positions; this model's fast forward takes at most "
                f"{self.arch.max_seq}"
            )
        if inputs.is_floating_point():
            return inputs.to(self.device, self.dtype)
        return self.arch.tok_embed(inputs.to(self.device))

    @shape_checked
    def positions(self, seq: int) -> Float[Tensor, "pos d_model"] | None:
        """Learned positional embeddings of positions 0..seq-1 (None under rotary)."""
        pos = self.arch.pos_embed
        return None if pos is None else pos[:seq]

    @shape_checked
    def embed(self, inputs: ModelInput) -> Float[Tensor, "batch pos d_model"]:
        """Residual entering block 0."""
        x = self.token_embed(inputs)
        pos = self.positions(x.shape[1])
        return x if pos is None else x + pos

    @shape_checked
    def project(
        self,
        x: Float[Tensor, "batch query d_model"],
        w: Float[Tensor, "_ d_model"],
        b: Float[Tensor, " _"] | None,
    ) -> Float[Tensor, "batch query _ d_head"]:
        """[b, s, d_model] -> [b, s, heads, d_head] (the bridge's hook layout)."""
        batch, seq, _ = x.shape
        return F.linear(x, w, b).view(batch, seq, -1, self.d_head)

    @shape_checked
    def attend(
        self, layer: int, q: Float[Tensor, "batch heads query d_head"],
        k: Float[Tensor, "batch kv_heads key d_head"],
        v: Float[Tensor, "batch kv_heads key d_head"], start: int = 0,
        pattern_fn: Callable[[Float[Tensor, "batch heads query key"]],
                             Float[Tensor, "batch heads query key"]] | None = None,
    ) -> Float[Tensor, "batch heads query d_head"]:  # fmt: skip
        """Softmax attention of queries at positions start.. over keys 0..; q is
        [b, H, s, dh] and k, v are [b, KV, n_keys, dh] (rotary already applied)."""
        repeats = self.n_heads // self.n_kv_heads
        if repeats > 1:  # grouped-query: head h reads key/value head h // repeats
            k = k.repeat_interleave(repeats, dim=1)
            v = v.repeat_interleave(repeats, dim=1)
        n_keys = k.shape[2]
        scores = (q @ k.transpose(-2, -1)) / self.layers[layer].attn.scale
        block_mask = self.mask[start:n_keys, :n_keys]
        scores = scores.masked_fill(block_mask, float("-inf"))
        pattern = torch.softmax(scores, dim=-1).masked_fill(block_mask, 0.0)
        if pattern_fn is not None:
            pattern = pattern_fn(pattern)
        return pattern @ v

    @shape_checked
    def rotate(
        self,
        q: Float[Tensor, "batch heads query d_head"],
        k: Float[Tensor, "batch kv_heads query d_head"],
        start: int = 0,
    ) -> tuple[
        Float[Tensor, "batch heads query d_head"], Float[Tensor, "batch kv_heads query d_head"]
    ]:
        """Rotary embedding of q, k [b, heads, s, dh] at positions start.. (if any)."""
        rotary = self.arch.rotary
        return (q, k) if rotary is None else rotary(q, k, start)

    @shape_checked
    def mlp(
        self, layer: int, x: Float[Tensor, "batch query d_model"]
    ) -> Float[Tensor, "batch query d_model"]:
        """The MLP's output for its residual input x (norm included)."""
        p = self.layers[layer]
        assert p.ln2 is not None and p.mlp is not None
        return p.mlp(p.ln2(x))

    @shape_checked
    def unembed(
        self, resid: Float[Tensor, "batch query d_model"]
    ) -> Float[Tensor, "batch query d_vocab_out"]:
        return self.arch.unembed(self.arch.ln_final(resid))

    # -- runs ---------------------------------------------------------------------------

    @torch.no_grad()
    @shape_checked
    def run_base(
        self, inputs: ModelInput, *, keep_z: Iterable[int] = (), keep_mid: Iterable[int] = ()
    ) -> BaseState:
        """The full base run, caching residuals and keys/values of every layer and the
        z / resid_mid of the layers named (what later patched runs restart from)."""
        resid = self.embed(inputs)
        state = BaseState(resid_pre=[], keys=[], values=[], logits=resid, z={}, resid_mid={})
        keep = (set(keep_z), set(keep_mid))
        state.logits = self._run(resid, 0, 0, record=state, keep=keep)
        return state

    @torch.no_grad()
    @shape_checked
    def run_patched(
        self, state: BaseState, site: Site, replacement: Float[Tensor, " batch *act"]
    ) -> Float[Tensor, "batch pos d_vocab_out"]:
        """Logits of the base run with `site` set to `replacement` (in the bridge's layout,
        full shape of the hook activation)."""
        start = site.first_pos
        entry = entry_point(site)
        if entry == "mid" and self.parallel:
            entry = "z"  # a parallel block's MLP input is the block's input: redo attention
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
                if record is not None:
                    record.resid_pre.append(resid)
                resid = maybe("resid_pre", layer, resid)
                if stage == "z":
                    assert base is not None
                    z = base.z[layer][:, start:]
                else:
                    z = self._attend(layer, resid, start, record, base, maybe)
                if record is not None and layer in keep[0]:
                    record.z[layer] = z
                z = maybe("z", layer, z)
                batch, seq = z.shape[:2]
                attn_out = maybe(
                    "attn_out", layer, F.linear(z.reshape(batch, seq, -1), p.attn.w_o, p.attn.b_o)
                )
                if self.parallel and not self.attn_only:
                    # Both halves read the block's input; a resid_mid patch (the MLP's
                    # input hook) also carries its change into the stream, as the hook
                    # oracle does.
                    mid = maybe("resid_mid", layer, resid)
                    mlp_out = maybe("mlp_out", layer, self.mlp(layer, mid))
                    resid = maybe("resid_post", layer, mid + attn_out + mlp_out)
                    continue
                resid = resid + attn_out
            if not self.attn_only:
                resid = maybe("resid_mid", layer, resid)
                if record is not None and layer in keep[1]:
                    record.resid_mid[layer] = resid
                resid = resid + maybe("mlp_out", layer, self.mlp(layer, resid))
            resid = maybe("resid_post", layer, resid)
        return self.unembed(resid)

    def _attend(
        self,
        layer: int,
        resid: Tensor,
        start: int,
        record: BaseState | None,
        base: BaseState | None,
        maybe: Callable[[str, int, Tensor], Tensor],
    ) -> Tensor:
        """Attention core for queries >= start; returns z [b, s, H, dh]."""
        a = self.layers[layer].attn
        x = self.layers[layer].ln1(resid)
        q = maybe("q", layer, self.project(x, a.w_q, a.b_q))
        k = maybe("k", layer, self.project(x, a.w_k, a.b_k))
        v = maybe("v", layer, self.project(x, a.w_v, a.b_v))
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [b, heads, s, dh]
        q, k = self.rotate(q, k, start)
        if record is not None:
            record.keys.append(k)
            record.values.append(v)
        if base is not None and start > 0:
            k = torch.cat([base.keys[layer][:, :, :start], k], dim=2)
            v = torch.cat([base.values[layer][:, :, :start], v], dim=2)
        z = self.attend(layer, q, k, v, start, pattern_fn=lambda t: maybe("pattern", layer, t))
        return z.transpose(1, 2)  # [b, s, H, dh]
