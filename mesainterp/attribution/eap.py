"""Edge attribution patching (EAP) and its integrated-gradients variant (EAP-IG).

For an edge u -> d, patching u's clean output into d's input on the corrupted run
changes the metric by approximately

    score(u -> d) = (out_u(clean) - out_u(corrupted)) . dM/dx_d |corrupted

where x_d is d's own copy of the residual stream (`EdgeForward`). Every edge is scored
from two forwards, batched over examples: the clean run without gradients, and the
corrupted run (whose upstream outputs are reused) with one backward. EAP-IG replaces the single gradient by the
mean gradient over `ig_steps` runs whose token embeddings are interpolated from
corrupted to clean (midpoint rule, alpha = (k + 1/2) / steps).

Because each example's metric depends only on that example, the gradient of the
summed metric gives every example's own score, kept for bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args, overload

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.atp_star import check_flags
from mesainterp.attribution.atp_star_edges import star_edge_scores
from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.attribution.graph import EdgeGraph
from mesainterp.attribution.positions import (
    PositionalEdgeScores,
    PositionalGraph,
    Positions,
    grouped_scores,
    position_groups,
)
from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.patching.engine import check_pair_shapes
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.patching.metrics import MetricFn
from mesainterp.shapes import ModelInput, shape_checked

__all__ = ["EDGE_METHODS", "EdgeMethod", "EdgeScores", "edge_attribution"]

EdgeMethod = Literal["eap", "eap-ig"]
EDGE_METHODS: tuple[str, ...] = get_args(EdgeMethod)


@dataclass(frozen=True, kw_only=True)
class EdgeScores:
    """Attribution score of every edge of a graph.

    scores:       [n_upstream, n_downstream] mean over examples (0 where no edge exists).
    per_example:  [n_upstream, n_downstream, batch].
    """

    graph: EdgeGraph
    scores: Tensor
    per_example: Tensor
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    @shape_checked
    def from_per_example(
        cls,
        graph: EdgeGraph,
        per_example: Float[Tensor, "n_up n_down batch"],
        *,
        method: EdgeMethod,
        ig_steps: int,
    ) -> EdgeScores:
        """The scores of `graph`'s edges from each example's own (e.g. chunks' joined)."""
        return cls(
            graph=graph,
            scores=per_example.mean(dim=-1),
            per_example=per_example,
            method=method,
            params={"ig_steps": ig_steps} if method == "eap-ig" else {},
        )

    def as_dict(self) -> dict[tuple[str, str], float]:
        """{(upstream, downstream): score} for every existing edge."""
        g = self.graph
        return {(u, d): float(self.scores[g.up_index(u), g.down_index(d)]) for u, d in g.edges()}

    def ranked(self) -> list[tuple[tuple[str, str], float]]:
        """Edges by decreasing |score| (ties in graph order)."""
        items = list(self.as_dict().items())
        return sorted(items, key=lambda item: -abs(item[1]))


def _metric_sum(metric: MetricFn, logits: Tensor, batch: Any) -> Tensor:
    values = metric(logits, batch)
    if not isinstance(values, Tensor) or values.ndim != 1 or values.shape[0] != logits.shape[0]:
        raise MesaInterpError(
            f"metric: expected one value per example, shape ({logits.shape[0]},), "
            f"got {tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__}"
        )
    return values.sum()


@overload
def edge_attribution(
    model: TransformerBridge,
    *,
    clean: Tensor,
    corrupted: Tensor,
    metric: AnyMetric,
    batch: Any = ...,
    method: EdgeMethod = ...,
    ig_steps: int = ...,
    forward: EdgeForward | None = ...,
    positions: Literal["all"] = ...,
    qk_fix: bool = ...,
    grad_drop: bool = ...,
) -> EdgeScores: ...
@overload
def edge_attribution(
    model: TransformerBridge,
    *,
    clean: Tensor,
    corrupted: Tensor,
    metric: AnyMetric,
    batch: Any = ...,
    method: EdgeMethod = ...,
    ig_steps: int = ...,
    forward: EdgeForward | None = ...,
    positions: Literal["each"] | Mapping[str, Any],
    qk_fix: bool = ...,
    grad_drop: bool = ...,
) -> PositionalEdgeScores: ...
@shape_checked
def edge_attribution(
    model: TransformerBridge,
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    batch: Any = None,
    method: EdgeMethod = "eap",
    ig_steps: int = 5,
    forward: EdgeForward | None = None,
    positions: Positions = "all",
    qk_fix: bool = False,
    grad_drop: bool = False,
) -> EdgeScores | PositionalEdgeScores:
    """Score every edge of `model` for the clean/corrupted inputs (see the module docstring).

    clean, corrupted: inputs of identical shape (tokens or embeddings).
    metric:           `(logits, batch) -> [batch]`, higher = more clean-like.
    positions:        "all" (one score per edge), or "each" / {role: positions}: one
                      score per edge and position or role (`attribution.positions`),
                      returned as `PositionalEdgeScores`; they sum to the "all" scores.
    qk_fix, grad_drop: AtP*'s fixes, with method 'eap' (`atp_star_edges`): exact
                      patterns at q/k receivers; mean |score| over dropped layers.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
    ...     metric=pairs.default_metric(), batch=pair.clean)
    >>> scores = mesainterp.edge_attribution(model, **inputs)
    >>> scores.method, scores.scores.shape, scores.per_example.shape  # upstream, downstream, batch
    ('eap', torch.Size([5, 8]), torch.Size([5, 8, 4]))
    >>> [(edge, round(score, 2)) for edge, score in scores.ranked()[:3]]
    [(('M0', 'logits'), 0.33), (('L0H0', 'M0.in'), 0.31), (('embed', 'L0H0.k'), 0.15)]
    """
    metric = as_batch_metric(metric)  # metric(logits) or metric(logits, batch)
    if method not in EDGE_METHODS:
        raise ConfigError("method", f"got {method!r}", allowed(EDGE_METHODS))
    if not isinstance(ig_steps, int) or isinstance(ig_steps, bool) or ig_steps < 1:
        raise ConfigError("ig_steps", f"expected an int >= 1, got {ig_steps!r}")
    check_pair_shapes(clean, corrupted)
    groups = position_groups(positions, batch=int(clean.shape[0]), seq=int(clean.shape[1]))
    ef = forward or EdgeForward(model)
    check_flags(qk_fix=qk_fix, grad_drop=grad_drop, n_layers=ef.fast.n_layers)
    if (qk_fix or grad_drop) and method != "eap":
        raise ConfigError("method", f"qk_fix and grad_drop need 'eap', got {method!r}", "'eap'")
    if (qk_fix or grad_drop) and groups.granularity != "all":
        raise ConfigError(
            "positions", f"qk_fix and grad_drop score whole edges, got {positions!r}", "'all'"
        )
    with torch.no_grad():
        tok_c, pos = ef.embed_parts(clean)
        tok_r, _ = ef.embed_parts(corrupted)
        out_c = ef.run(tok_c, pos).outs
    valid = ef.graph.valid_mask().to(out_c[0].device)
    if qk_fix or grad_drop:
        with torch.no_grad():
            diffs = _diffs(out_c, ef.run(tok_r, pos).outs)
        per_example = star_edge_scores(
            ef, tok_r, pos, diffs,
            lambda logits: _metric_sum(metric, logits, batch),
            lambda g: _scores(diffs, g) * valid.unsqueeze(-1),
            qk_fix=qk_fix, grad_drop=grad_drop,
        )  # fmt: skip
        scores = EdgeScores.from_per_example(ef.graph, per_example, method=method, ig_steps=1)
        return replace(scores, params={"qk_fix": qk_fix, "grad_drop": grad_drop})
    alphas = [0.0] if method == "eap" else [(k + 0.5) / ig_steps for k in range(ig_steps)]
    out_r: list[Tensor] | None = None
    grads: Tensor | None = None
    for alpha in alphas:
        tok = tok_r + alpha * (tok_c - tok_r)
        run = ef.run(tok.detach(), pos, leaves=True)
        g = ef.leaf_grads(run, _metric_sum(metric, run.logits, batch)).detach()
        grads = g if grads is None else grads.add_(g)
        if alpha == 0.0:  # the gradient run is the corrupted run: reuse its outputs
            out_r = [o.detach() for o in run.outs]
    if out_r is None:
        with torch.no_grad():
            out_r = ef.run(tok_r, pos).outs
    diffs = _diffs(out_c, out_r)
    assert grads is not None
    if len(alphas) > 1:  # in place: the buffer is [n_down, b, p, d_model]
        grads.div_(len(alphas))
    if groups.granularity != "all":
        grouped = grouped_scores(diffs, grads, groups.index, len(groups.labels))
        grouped = grouped * valid[:, :, None, None]
        return PositionalEdgeScores(
            graph=PositionalGraph.of(ef.graph, groups), scores=grouped.mean(dim=-1),
            per_example=grouped, method=method,
            params={"ig_steps": ig_steps} if method == "eap-ig" else {},
        )  # fmt: skip
    per_example = _scores(diffs, grads) * valid.unsqueeze(-1)
    return EdgeScores.from_per_example(ef.graph, per_example, method=method, ig_steps=ig_steps)


def _diffs(out_c: list[Tensor], out_r: list[Tensor]) -> Float[Tensor, "n_up batch pos d_model"]:
    # Subtract straight into one buffer: a stack of differences would copy twice.
    diffs = out_c[0].new_empty((len(out_c), *out_c[0].shape))
    for i, (a, b) in enumerate(zip(out_c, out_r, strict=True)):
        torch.sub(a, b, out=diffs[i])
    return diffs


def _scores(
    diffs: Float[Tensor, "n_up batch pos d_model"], grads: Float[Tensor, "n_down batch pos d_model"]
) -> Float[Tensor, "n_up n_down batch"]:
    # One batched matmul over examples on strided views: einsum's contraction path
    # copies both operands first and ran ~5x slower here.
    n_up, batch = diffs.shape[:2]
    left = diffs.reshape(n_up, batch, -1).transpose(0, 1)
    right = grads.reshape(grads.shape[0], batch, -1).permute(1, 2, 0)
    return torch.bmm(left, right).permute(1, 2, 0)
