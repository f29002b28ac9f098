"""ACDC-style exact pruning over edges (Conmy et al. 2023).

Start from the full model on the clean inputs. Visit downstream inputs from the logits
backwards (reverse topological order) and, for each, its upstream edges from the
latest to the earliest: cut the edge (it reads the ablated value), run, and keep the
cut if the metric dropped by less than `threshold`:

    damage = mean metric (current circuit) - mean metric (with the edge cut) < threshold

The metric is higher-is-better (a task metric, or -KL to the clean run), so the damage
of a harmless edge is ~0. Each trial run restarts at the edge's layer from the cached
clean run (cutting edges into layer l leaves layers < l untouched, and every cut made
so far is into a layer >= l). Two kinds of edge are cut without a run: edges into a
node that no longer has any kept outgoing edge (they cannot matter), and edges whose
upstream output already equals its ablated value on every example and position (the
cut changes no input; under resample ablation the positional embeddings, and any
node the counterfactual does not reach).

`budget` bounds the trial runs and seconds of one call; a search that meets it
returns `status="partial"`, its undecided edges kept (damage NaN). With `state`, the
progress is saved to that file after every downstream input and at the stop, and a
call given an existing file continues from it (`acdc_checkpoint`): stopped by the
budget, interrupted, or killed, the finished search equals the uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.attribution.positions import Positions
from mesainterp.discovery.ablated import ablated_outputs, cut_run_metric
from mesainterp.discovery.acdc_checkpoint import (
    AcdcProgress,
    acdc_key,
    load_progress,
    save_progress,
)
from mesainterp.discovery.acdc_positions import acdc_by_position
from mesainterp.discovery.budget import COMPLETE, PARTIAL, Budget, Status
from mesainterp.errors import ConfigError
from mesainterp.patching.engine import check_pair_shapes
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.progress import progress_bar
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked

__all__ = ["AcdcResult", "acdc"]


@dataclass(frozen=True, kw_only=True)
class AcdcResult:
    """kept: {(u, d): damage} of the edges kept; damages: every edge tested (NaN = not
    decided). status: "partial" when the budget stopped the search (its undecided edges
    are kept, with damage NaN; `n_undecided` counts them)."""

    kept: dict[tuple[str, str], float]
    damages: Tensor  # [n_upstream, n_downstream]
    n_runs: int
    n_skipped: int = 0  # edges cut without a run
    final_metric: float
    full_metric: float
    # Per-position runs: damages is [n_upstream, n_downstream, n_groups], kept edges are
    # named "u@g" -> "d@g", and this is the granularity (`PositionGroups.spec`).
    positions: dict[str, Any] | None = None
    status: Status = COMPLETE
    n_undecided: int = 0


@torch.no_grad()
@shape_checked
def acdc(
    model: TransformerBridge,
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    threshold: float,
    batch: Any = None,
    ablation: str = "resample",
    reference: ReferenceInput | None = None,
    forward: EdgeForward | None = None,
    restart: bool = True,
    skip_inert: bool = True,
    progress: bool | None = None,
    positions: Positions = "all",
    budget: Budget | None = None,
    state: str | os.PathLike[str] | None = None,
) -> AcdcResult:
    """Prune edges whose ablation costs less than `threshold` (see the module docstring).

    restart: False runs every trial from layer 0 (the slow oracle of the restart).
    skip_inert: False runs the trials of edges whose cut changes no input too (their oracle).
    progress: a bar over the downstream inputs (None: on unless MESAINTERP_NO_PROGRESS).
    positions: "all", or "each" / {role: positions} to prune the per-position edge set
              (`discovery.acdc_positions`, `attribution.positions`).
    budget: at most so many trial runs / seconds in this call (see the module docstring).
    state: a file to save progress to and continue from.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
    ...     metric=pairs.default_metric(), batch=pair.clean)
    >>> result = mesainterp.acdc(model, threshold=0.01, progress=False, **inputs)
    >>> result.n_runs, result.n_skipped, len(result.kept)
    (13, 8, 8)
    >>> round(result.full_metric, 2), round(result.final_metric, 2)
    (0.14, 0.26)
    >>> sorted(result.kept)[:3]
    [('L0H0', 'M0.in'), ('L0H1', 'M0.in'), ('L0H1', 'logits')]
    """
    metric = as_batch_metric(metric)  # metric(logits) or metric(logits, batch)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold < 0:
        raise ConfigError("threshold", f"expected a number >= 0, got {threshold!r}")
    check_pair_shapes(clean, corrupted)
    ef = forward or EdgeForward(model)
    if positions != "all":
        limited = budget is not None and (budget.max_runs, budget.max_seconds) != (None, None)
        if limited:  # the per-position loop keeps no progress file yet
            raise ConfigError(
                "positions", f"a budget needs positions='all', got {positions!r}", "'all'"
            )
        pg, kept_at, damages_at, counts = acdc_by_position(
            ef, metric, clean=clean, corrupted=corrupted, threshold=threshold,
            positions=positions, batch=batch, ablation=ablation, reference=reference,
            restart=restart, skip_inert=skip_inert, progress=progress,
        )  # fmt: skip
        return AcdcResult(kept=kept_at, damages=damages_at, positions=pg.spec, **counts)
    g = ef.graph
    ablated = ablated_outputs(ef, ablation, corrupted=corrupted, reference=reference)
    tok, pos = ef.embed_parts(clean)
    base = ef.run(tok, pos)
    valid = g.valid_mask()
    full = float(metric(base.logits, batch).float().mean())
    key = acdc_key(
        clean=clean, corrupted=corrupted, full=full, names=[g.upstream, g.downstream],
        options={"threshold": float(threshold), "ablation": ablation, "restart": restart,
                 "skip_inert": skip_inert},
    )  # fmt: skip
    p = (None if state is None else load_progress(state, key=key)) or AcdcProgress(
        key=key, cut=torch.zeros_like(valid), damages=torch.full(valid.shape, float("nan")),
        current=full, full=full, n_runs=0, n_skipped=0, node=g.n_downstream - 1,
        edge=g.n_before(g.n_downstream - 1),
    )  # fmt: skip
    clock = (budget or Budget()).start()
    # Upstream nodes whose cut writes back the value already there.
    inert = [bool(torch.equal(o, a.expand_as(o))) for o, a in zip(base.outs, ablated, strict=True)]
    nodes = reversed(range(p.node + 1))
    stopped = False
    for j in progress_bar(nodes, desc="acdc", total=p.node + 1, unit="node", progress=progress):
        n_up = g.n_before(j)
        owners = [g.up_index(o) for o in g.owners(g.downstream[j])]
        # Every reader of this input (one head, or a key/value head's query heads) is
        # cut off from everything downstream: its incoming edges cannot matter.
        if owners and not (valid[owners] & ~p.cut[owners]).any():
            p.cut[:n_up, j] = True
            p.damages[:n_up, j] = 0.0
            p.n_skipped += n_up
            _advance(p, g, j, state)
            continue
        start = g.down_layer[j] if restart else 0
        for i in reversed(range(min(n_up, p.edge))):
            trial = p.cut.clone()
            trial[i, j] = True
            if skip_inert and inert[i]:
                p.cut, p.damages[i, j] = trial, 0.0
                p.n_skipped += 1
                continue
            if clock.spent():
                p.node, p.edge, stopped = j, i + 1, True
                break
            values = cut_run_metric(
                ef, metric, batch, tok=tok, pos=pos, cut=trial, ablated=ablated,
                start_layer=start, base=base,
            )  # fmt: skip
            clock.charge()
            p.n_runs += 1
            value = float(values.mean())
            damage = p.current - value
            p.damages[i, j] = damage
            if damage < threshold:
                p.cut = trial
                p.current = value
        if stopped:
            if state is not None:
                save_progress(state, p)
            break
        _advance(p, g, j, state)
    cut, damages = p.cut, p.damages
    undecided = valid & damages.isnan()
    kept = {
        (g.upstream[i], g.downstream[j]): float(damages[i, j])
        for j in range(g.n_downstream)
        for i in range(g.n_before(j))
        if not cut[i, j]
    }
    return AcdcResult(
        kept=kept, damages=damages, n_runs=p.n_runs, final_metric=p.current, full_metric=full,
        n_skipped=p.n_skipped, status=PARTIAL if stopped else COMPLETE,
        n_undecided=int(undecided.sum()),
    )  # fmt: skip


def _advance(p: AcdcProgress, g: Any, j: int, state: str | os.PathLike[str] | None) -> None:
    """Node `j` is decided: move the cursor to the next one and save."""
    p.node = j - 1
    p.edge = g.n_before(j - 1) if j > 0 else 0
    if state is not None:
        save_progress(state, p)
