"""The smallest top-n circuit whose exact faithfulness reaches a target.

Attribution (EAP, EAP-IG, or any scoring method given as a function, such as AtP*)
ranks every edge in one or a few backward passes; exact faithfulness then checks
the ranking. For each n of a grid, smallest first, the top-n edges are kept and
every other edge is ablated (one forward), and the first n whose faithfulness

    (metric(circuit) - metric(empty)) / (metric(full model) - metric(empty))

reaches `target` is the answer: the smallest n on the grid that does, by
measurement, not by assumption (faithfulness need not grow with n, so the grid is
scanned, not bisected). The chosen circuit's rows are then measured by
`faithfulness_measure.faithfulness` itself (the slow oracle of this scan: the same
value, plus completeness and a bootstrap interval).

Cost: the scoring, then one forward per grid point tried, against ACDC's one forward
per edge: the recommended path for big models. Dangling edges are dropped from
each circuit (`greedy.top_edges`): an edge into a node whose outputs are all ablated
changes no forward, so the faithfulness is that of the raw top-n.

A budget (`discovery.budget`, a run is a grid point) stops the scan early with
`status="partial"`: the largest circuit measured so far is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.eap import EDGE_METHODS, EdgeScores, edge_attribution
from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.discovery.ablated import ablated_outputs, cut_run_metric
from mesainterp.discovery.budget import COMPLETE, PARTIAL, Budget, Status
from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.faithfulness_measure import FaithfulnessRow, faithfulness
from mesainterp.discovery.greedy import top_edges
from mesainterp.errors import ConfigError, allowed
from mesainterp.patching.engine import check_pair_shapes
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.stats import normalised_effect

__all__ = ["Scorer", "TopNResult", "default_grid", "topn_circuit"]

# A scoring method: edge_attribution's `method` name ("eap", "eap-ig", ...), or a
# function scorer(model, clean=, corrupted=, metric=, batch=) -> EdgeScores.
Scorer = str | Callable[..., EdgeScores]


@dataclass(frozen=True, kw_only=True)
class TopNResult:
    """circuit: the chosen top-n circuit (its `faithfulness` is the measured value).
    curve: (n, faithfulness) of every grid point measured, in order. reached: whether
    any met the target. rows: `faithfulness()`'s rows of the chosen circuit."""

    circuit: Circuit
    n: int
    faithfulness: float
    reached: bool
    curve: list[tuple[int, float]]
    rows: list[FaithfulnessRow]
    scores: EdgeScores
    n_runs: int
    status: Status = COMPLETE


def default_grid(n_edges: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... below `n_edges`, then `n_edges` (the full graph).

    >>> from mesainterp.discovery.topn import default_grid
    >>> default_grid(120)
    [1, 2, 5, 10, 20, 50, 100, 120]
    """
    grid: list[int] = []
    scale = 1
    while scale < n_edges:
        grid.extend(m * scale for m in (1, 2, 5) if m * scale < n_edges)
        scale *= 10
    return [*grid, n_edges]


def _scores(
    model: TransformerBridge, scorer: Scorer, kwargs: dict[str, Any], **inputs: Any
) -> EdgeScores:
    if callable(scorer):
        return scorer(model, **inputs, **kwargs)
    scores = edge_attribution(model, method=scorer, **inputs, **kwargs)  # type: ignore[call-overload]
    assert isinstance(scores, EdgeScores)  # positions are not among the top-n options
    return scores


def topn_circuit(
    model: TransformerBridge,
    *,
    clean: Tensor,
    corrupted: Tensor,
    metric: AnyMetric,
    batch: Any = None,
    target: float = 0.9,
    scorer: Scorer = "eap-ig",
    scorer_kwargs: dict[str, Any] | None = None,
    scores: EdgeScores | None = None,
    grid: Sequence[int] | None = None,
    ablation: str = "resample",
    reference: Tensor | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    budget: Budget | None = None,
    forward: EdgeForward | None = None,
) -> TopNResult:
    """The smallest n on `grid` whose top-n circuit has exact faithfulness >= `target`
    (see the module docstring); the largest measured when none reaches it.

    scorer:  how edges are ranked: an `edge_attribution` method name, or a function
             (model, clean=, corrupted=, metric=, batch=, **scorer_kwargs) -> EdgeScores.
    scores:  scores already computed (the scorer is then not called).
    grid:    candidate sizes, increasing (default: `default_grid` of the graph's edges).

    >>> model = mesainterp.discovery.planted_model()
    >>> case = mesainterp.discovery.planted_pair()
    >>> from mesainterp.discovery.topn import topn_circuit
    >>> found = topn_circuit(model, clean=case.clean, corrupted=case.corrupted,
    ...     metric=case.metric, target=0.99, scorer="eap", n_boot=100)
    >>> found.n, round(found.faithfulness, 3), found.curve[:3]
    (5, 1.0, [(1, 0.0), (2, 0.0), (5, 1.0)])
    >>> sorted(found.circuit.edges)
    [('L0H1', 'L1H0.v'), ('L1H0', 'logits'), ('embed', 'L0H1.v')]
    """
    metric = as_batch_metric(metric)
    if isinstance(target, bool) or not isinstance(target, int | float) or target != target:
        raise ConfigError("target", f"got {target!r}", "a number (a faithfulness, e.g. 0.9)")
    if isinstance(scorer, str) and scorer not in EDGE_METHODS:  # before any forward
        raise ConfigError("method", f"got {scorer!r}", allowed(EDGE_METHODS))
    check_pair_shapes(clean, corrupted)
    ef = forward or EdgeForward(model)
    g = ef.graph
    if scores is None:
        scores = _scores(
            model, scorer, scorer_kwargs or {}, clean=clean, corrupted=corrupted, metric=metric,
            batch=batch,
        )  # fmt: skip
    n_edges = int(g.valid_mask().sum())
    sizes = list(default_grid(n_edges) if grid is None else grid)
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"grid[{i}]", f"got {n!r}", "ints >= 1")
        if i and n <= sizes[i - 1]:
            raise ConfigError(f"grid[{i}]", f"{n} after {sizes[i - 1]}", "increasing sizes")
    if not sizes:
        raise ConfigError("grid", "empty", "at least one size")

    ref = reference if reference is not None else torch.cat([clean, corrupted])
    abl = ablated_outputs(ef, ablation, corrupted=corrupted, reference=ref)
    tok, pos = ef.embed_parts(clean)
    valid = g.valid_mask()

    def run(cut: Tensor) -> Tensor:
        return cut_run_metric(ef, metric, batch, tok=tok, pos=pos, cut=cut, ablated=abl)

    with torch.no_grad():
        full = metric(ef.run(tok, pos).logits, batch).detach().float()
        empty = run(valid)
    clock = (budget or Budget()).start()
    curve: list[tuple[int, float]] = []
    chosen: dict[tuple[str, str], float] = {}
    status: Status = COMPLETE
    for n in sizes:
        if curve and clock.spent():
            status = PARTIAL
            break
        edges = top_edges(scores, top_n=n)
        with torch.no_grad():
            kept = run(valid & ~(g.mask_of(set(edges)) & valid))
        clock.charge()
        value = float(normalised_effect(kept[None], full, empty)[0])
        curve.append((n, value))
        chosen = edges
        if value >= target:
            break
    n, value = curve[-1]
    reached = value >= target
    circuit = Circuit.from_edges(
        chosen, method=scores.method,
        params={**scores.params, "selection": "topn", "top_n": n, "target": float(target),
                "grid": sizes, "curve": [list(p) for p in curve], "reached": reached,
                "status": status},
        ablation=ablation, node_order=g.upstream,
    )  # fmt: skip
    rows = faithfulness(
        model, circuit, clean=clean, corrupted=corrupted, metric=metric, batch=batch,
        ablations=(ablation,), reference=ref, n_boot=n_boot, seed=seed, forward=ef,
        progress=False,
    )  # fmt: skip
    circuit = Circuit(
        nodes=circuit.nodes, edges=circuit.edges, method=circuit.method, params=circuit.params,
        ablation=ablation, provenance=circuit.provenance, faithfulness=rows[0].value,
    )  # fmt: skip
    return TopNResult(
        circuit=circuit, n=n, faithfulness=value, reached=reached, curve=curve, rows=rows,
        scores=scores, n_runs=clock.runs, status=status,
    )  # fmt: skip
