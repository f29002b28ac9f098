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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.attribution.positions import Positions
from mesainterp.discovery.ablated import ablated_outputs, cut_run_metric
from mesainterp.discovery.acdc_positions import acdc_by_position
from mesainterp.errors import ConfigError
from mesainterp.patching.engine import check_pair_shapes
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.progress import progress_bar
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked

__all__ = ["AcdcResult", "acdc"]


@dataclass(frozen=True, kw_only=True)
class AcdcResult:
    """kept: {(u, d): damage} of the edges kept; damages: every edge tested (NaN = skipped)."""

    kept: dict[tuple[str, str], float]
    damages: Tensor  # [n_upstream, n_downstream]
    n_runs: int
    n_skipped: int = 0  # edges cut without a run
    final_metric: float
    full_metric: float
    # Per-position runs: damages is [n_upstream, n_downstream, n_groups], kept edges are
    # named "u@g" -> "d@g", and this is the granularity (`PositionGroups.spec`).
    positions: dict[str, Any] | None = None


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
) -> AcdcResult:
    """Prune edges whose ablation costs less than `threshold` (see the module docstring).

    restart: False runs every trial from layer 0 (the slow oracle of the restart).
    skip_inert: False runs the trials of edges whose cut changes no input too (their oracle).
    progress: a bar over the downstream inputs (None: on unless MESAINTERP_NO_PROGRESS).
    positions: "all", or "each" / {role: positions} to prune the per-position edge set
              (`discovery.acdc_positions`, `attribution.positions`).

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
    cut = torch.zeros_like(valid)
    damages = torch.full(valid.shape, float("nan"))
    full = float(metric(base.logits, batch).float().mean())
    current = full
    n_runs = n_skipped = 0
    # Upstream nodes whose cut writes back the value already there.
    inert = [bool(torch.equal(o, a.expand_as(o))) for o, a in zip(base.outs, ablated, strict=True)]
    nodes = reversed(range(g.n_downstream))
    for j in progress_bar(nodes, desc="acdc", total=g.n_downstream, unit="node", progress=progress):
        n_up = g.n_before(j)
        owners = [g.up_index(o) for o in g.owners(g.downstream[j])]
        # Every reader of this input (one head, or a key/value head's query heads) is
        # cut off from everything downstream: its incoming edges cannot matter.
        if owners and not (valid[owners] & ~cut[owners]).any():
            cut[:n_up, j] = True
            damages[:n_up, j] = 0.0
            n_skipped += n_up
            continue
        start = g.down_layer[j] if restart else 0
        for i in reversed(range(n_up)):
            trial = cut.clone()
            trial[i, j] = True
            if skip_inert and inert[i]:
                cut, damages[i, j] = trial, 0.0
                n_skipped += 1
                continue
            values = cut_run_metric(
                ef, metric, batch, tok=tok, pos=pos, cut=trial, ablated=ablated,
                start_layer=start, base=base,
            )  # fmt: skip
            n_runs += 1
            value = float(values.mean())
            damage = current - value
            damages[i, j] = damage
            if damage < threshold:
                cut = trial
                current = value
    kept = {
        (g.upstream[i], g.downstream[j]): float(damages[i, j])
        for j in range(g.n_downstream)
        for i in range(g.n_before(j))
        if not cut[i, j]
    }
    return AcdcResult(
        kept=kept, damages=damages, n_runs=n_runs, final_metric=current, full_metric=full,
        n_skipped=n_skipped,
    )  # fmt: skip
