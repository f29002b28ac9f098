"""The causal check of a head role: ablate the head at the role's query positions only.

The head's output z (before W_O) is replaced at the query positions of each example,
through `patching.hook_context` and `patching.ablation.replacement_from`:

    mean       the batch mean of z at that position (`pos_mean` over the batch)
    resample   z of another run at that position: the pair's corrupted half for
               prompt pairs, the next example of the batch for a task
    zero       zeros

`drop` is the behaviour of the clean run minus that of the ablated run, per
example: positive when the ablation hurts what the role predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, allowed
from mesainterp.patching.ablation import replacement_from
from mesainterp.patching.engine import capture
from mesainterp.patching.hooks import hook_context
from mesainterp.tasks.base import TaskBatch

__all__ = ["HEAD_ABLATIONS", "Behaviour", "HeadAblation", "HeadAblator", "answer_logprob_after"]

HeadAblation = Literal["mean", "resample", "zero"]
HEAD_ABLATIONS: tuple[str, ...] = get_args(HeadAblation)

# behaviour(logits, query mask [batch, pos]) -> one value per example, higher = better
Behaviour = Callable[[Tensor, Tensor], Float[Tensor, " batch"]]


def answer_logprob_after(batch: TaskBatch) -> Behaviour:
    """Mean log-probability of the targets at the answer positions at or after the
    example's first query position: everything an ablation there can change."""
    targets = batch.targets
    scored = batch.answer_mask

    def behaviour(logits: Tensor, query: Tensor) -> Tensor:
        logp = torch.log_softmax(logits.float().cpu(), dim=-1)
        safe = targets.clamp(min=0)
        picked = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        pos = torch.arange(targets.shape[1])
        first = torch.where(query.any(1), query.float().argmax(1), targets.shape[1])
        use = scored & (pos[None] >= first[:, None])
        total = (picked * use).sum(1)
        return total / use.sum(1).clamp(min=1)

    return behaviour


@dataclass
class HeadAblator:
    """Ablates one head at chosen query positions; caches the clean run once."""

    model: TransformerBridge
    inputs: Tensor
    ablation: HeadAblation = "mean"
    source_inputs: Tensor | None = None  # the resample source (default: the batch rolled by one)

    def __post_init__(self) -> None:
        if self.ablation not in HEAD_ABLATIONS:
            raise ConfigError("ablation", f"got {self.ablation!r}", allowed(HEAD_ABLATIONS))
        n_layers = int(self.model.cfg.n_layers)
        self._names = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
        self.logits, self._clean = capture(self.model, self.inputs, self._names)
        self._source: dict[str, Tensor] = {}
        if self.ablation == "resample":
            if self.source_inputs is None:
                self._source = {k: v.roll(1, dims=0) for k, v in self._clean.items()}
            else:
                self._source = capture(self.model, self.source_inputs, self._names)[1]

    def _replacement(self, name: str) -> Tensor:
        base = self._clean[name]
        if self.ablation == "zero":
            return replacement_from("zero", name=name, base_act=base, source_act=None)
        if self.ablation == "mean":
            return replacement_from("pos_mean", name=name, base_act=base, source_act=base)
        return replacement_from("resample", name=name, base_act=base, source_act=self._source[name])

    @torch.no_grad()
    def logits_without(self, layer: int, head: int, query: Bool[Tensor, "batch pos"]) -> Tensor:
        """Logits with head `head` of `layer` ablated at the `query` positions."""
        name = self._names[layer]
        replacement = self._replacement(name)

        def hook(act: Tensor, *, hook: Any) -> Tensor:
            out = act.clone()
            where = query.to(act.device)
            out[:, :, head][where] = replacement[:, :, head].to(act.dtype)[where]
            return out

        with hook_context(self.model, fwd=[(name, hook)]):
            return self.model(self.inputs)
