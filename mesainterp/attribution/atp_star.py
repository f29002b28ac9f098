"""AtP* (Kramár et al. 2024): attribution patching that does not miss saturated heads.

Plain attribution patching scores a node n as (n_clean - n_corrupted) . dM/dn at the
corrupted run. Two failure modes give false negatives, and AtP* fixes each:

- **QK fix.** A head's query or key acts through a softmax. When the corrupted run's
  attention is saturated (near one-hot), the softmax's gradient is near 0, so the
  linear estimate of patching a q or k is near 0 however large the real effect. The
  fix recomputes the pattern exactly: the scores with the site's slice of q (or k)
  replaced by its clean value, their masked softmax, and the change
  dA = A_patched - A_corrupted; the score is <dA, dM/dA>, linear only after the
  pattern. For a q or k site, dA equals the pattern exact patching of that site
  produces, so the score equals exact patching wherever the metric is linear in the
  head's pattern (the tests check both).
- **GradDrop.** A node's direct and indirect effects can cancel in the gradient. For
  each layer l, the gradient is taken with the gradient through layer l's residual
  contribution (its attention and MLP outputs) set to zero, and the scores are

      score_GD(n) = 1/(L-1) * sum_l |score_l(n)|

  (the paper's normalisation: the term whose dropped layer holds n is 0). GradDrop
  scores are magnitudes (>= 0), averaged over examples; it costs L gradient runs.

AtP* is both together. The QK fix reads the model through `FastForward` (rotary,
grouped-query, scale, mask), so it runs on the models the fast forward covers and
refuses the others by name; GradDrop runs on any bridge. What is not covered: the QK fix applies to q and k sites (node
attribution) and q and k receivers (edge attribution, `atp_star_edges`); a node
upstream of a saturated head (a head's z, an MLP) still reaches it through the
linearised softmax, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.patching.fast import FastForward, unsupported_reason
from mesainterp.sites.site import Site

__all__ = [
    "QK_KINDS",
    "QKFix",
    "check_flags",
    "combine_grad_drop",
    "grad_drop_hooks",
    "masked_pattern",
]

QK_KINDS = ("q", "k")


def check_flags(*, qk_fix: object, grad_drop: object, n_layers: int) -> None:
    """Refuse non-bool flags, and GradDrop on a model with one layer (nothing to drop)."""
    for name, value in (("qk_fix", qk_fix), ("grad_drop", grad_drop)):
        if not isinstance(value, bool):
            raise ConfigError(name, f"expected a bool, got {value!r}", "True, False")
    if grad_drop and n_layers < 2:
        raise ConfigError("grad_drop", f"needs a model with >= 2 layers, got {n_layers}")


def masked_pattern(
    fast: FastForward,
    layer: int,
    q: Float[Tensor, "batch heads q_pos d_head"],
    k: Float[Tensor, "batch heads k_pos d_head"],
    rows: Tensor | slice = slice(None),
) -> Float[Tensor, "batch heads rows k_pos"]:
    """The causal softmax pattern of rotated queries `q` (at query positions `rows`)
    over rotated keys `k`, one key head per query head (already repeated)."""
    n_keys = k.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / fast.layers[layer].attn.scale
    mask = fast.mask[:n_keys, :n_keys][rows]
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1).masked_fill(mask, 0.0)


def _positions(site: Site, seq: int) -> Tensor:
    return torch.arange(seq) if site.pos is None else torch.tensor([site.pos])


class QKFix:
    """The exact pattern change of q and k sites, and their scores <dA, dM/dA>.

    Reads the bridge's own weights through `FastForward` (rotary, scale, masking), so it
    runs on the models the fast forward supports and refuses the others by name.
    """

    def __init__(self, model: TransformerBridge) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise MesaInterpError(f"qk_fix cannot run on this model: {reason}")
        self.fast = FastForward(model)
        self._rotated: dict[int, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]] = {}

    @staticmethod
    def hook_names(sites: Sequence[Site]) -> list[str]:
        """The q, k and pattern hooks the fix reads for `sites` (their layers)."""
        layers = sorted({s.block for s in sites if s.kind in QK_KINDS})
        return [
            Site(kind=kind, layer=layer, head=0).hook_name
            for layer in layers
            for kind in ("q", "k", "pattern")
        ]

    def prepare(self, clean: dict[str, Tensor], corrupted: dict[str, Tensor]) -> None:
        """Rotate both runs' queries and keys, and the corrupted pattern, once per layer."""
        self._rotated.clear()
        for name in clean:
            if not name.endswith("attn.hook_q"):
                continue
            layer = int(name.split(".")[1])
            k_name = name.replace("hook_q", "hook_k")
            # Hook layout [b, s, heads, d_head] -> [b, heads, s, d_head], then rotary.
            qc, kc = self.fast.rotate(clean[name].transpose(1, 2), clean[k_name].transpose(1, 2))
            qr, kr = self.fast.rotate(
                corrupted[name].transpose(1, 2), corrupted[k_name].transpose(1, 2)
            )
            old = masked_pattern(self.fast, layer, qr, self._repeat(qr, kr))
            self._rotated[layer] = (qc, kc, qr, kr, old)

    @staticmethod
    def _repeat(q: Tensor, k: Tensor) -> Tensor:
        """Keys repeated to one per query head (grouped-query attention)."""
        repeats = q.shape[1] // k.shape[1]
        return k if repeats == 1 else k.repeat_interleave(repeats, dim=1)

    def patched_pattern(self, site: Site) -> tuple[list[int], Tensor, Tensor, Tensor]:
        """(query heads, query rows, patched pattern, corrupted pattern) of a q or k site:
        the site's slice of q (or k) set to its clean value, the rest corrupted."""
        if site.kind not in QK_KINDS:
            raise MesaInterpError(f"qk_fix: expected a q or k site, got {site.label()}")
        layer, head = site.block, site.head
        assert head is not None
        qc, kc, qr, kr, old = self._rotated[layer]
        seq = qr.shape[2]
        pos = _positions(site, seq).to(qr.device)
        if site.kind == "q":
            group = head // (qr.shape[1] // kr.shape[1])
            new = masked_pattern(
                self.fast, layer, qc[:, head : head + 1, pos], kr[:, group : group + 1], pos
            )
            return [head], pos, new, old[:, head : head + 1, pos]
        repeats = qr.shape[1] // kr.shape[1]
        heads = list(range(head * repeats, (head + 1) * repeats))
        keys = kr[:, head : head + 1].clone()
        keys[:, :, pos] = kc[:, head : head + 1, pos]
        rows = torch.arange(seq, device=qr.device)
        new = masked_pattern(self.fast, layer, qr[:, heads], keys.expand(-1, len(heads), -1, -1))
        return heads, rows, new, old[:, heads]

    def score(self, site: Site, pattern_grads: Sequence[Tensor]) -> Float[Tensor, "runs batch"]:
        """<A_patched - A_corrupted, dM/dA> per example, for each gradient run's dM/dA
        [b, H, q, k] (the pattern change is computed once for all of them)."""
        heads, rows, new, old = self.patched_pattern(site)
        change = new - old
        return torch.stack(
            [(change * g[:, heads][:, :, rows]).flatten(1).sum(dim=1) for g in pattern_grads]
        )


def _drop(act: Tensor, *, hook: Any) -> Tensor:
    # Same value, zero gradient; `act * 0` keeps upstream leaves in the graph.
    return act.detach() + act * 0


def grad_drop_hooks(layer: int, *, attn_only: bool) -> list[tuple[str, Any]]:
    """Forward hooks that zero the gradient through block `layer`'s residual contribution
    (its attention output and, unless attention-only, its MLP output)."""
    names = [f"blocks.{layer}.hook_attn_out"]
    if not attn_only:
        names.append(f"blocks.{layer}.hook_mlp_out")
    return [(name, _drop) for name in names]


def combine_grad_drop(per_layer: Sequence[Tensor]) -> Tensor:
    """1/(L-1) * sum_l |score_l|: the GradDrop score from one score tensor per dropped layer."""
    n = len(per_layer)
    if n < 2:
        raise MesaInterpError(f"grad_drop: expected one score per layer of >= 2 layers, got {n}")
    total = per_layer[0].abs()
    for scores in per_layer[1:]:
        total = total + scores.abs()
    return total / (n - 1)
