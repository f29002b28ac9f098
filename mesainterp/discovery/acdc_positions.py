"""ACDC over the per-position (or per-role) edge set (`attribution.positions`).

The same pruning as `acdc_pruning.acdc`, over the larger edge set u@g -> d@g: visit
downstream inputs from the logits backwards, at each one its groups from the last to
the first, and at each group its upstream edges from the latest to the earliest; cut
the edge at that group's positions only, run, and keep the cut if the metric dropped
by less than `threshold`. The same two shortcuts apply: edges into a node whose every
reader at the positions that read it is cut off (`PositionalGraph.owners`), and edges
whose upstream output already equals its ablated value at that group's positions,
are cut without a run.

Cost: one run per edge and group, so about n_groups times plain ACDC; each run
restarts at the edge's layer from the cached clean run. Use roles, or a tiny model,
for "each" on long prompts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.attribution.positions import PositionalGraph, Positions, at, position_groups
from mesainterp.discovery.ablated import ablated_outputs, cut_run_metric
from mesainterp.progress import progress_bar

__all__ = ["acdc_by_position"]


@torch.no_grad()
def acdc_by_position(
    ef: EdgeForward,
    metric: Any,
    *,
    clean: Tensor,
    corrupted: Tensor,
    threshold: float,
    positions: Positions,
    batch: Any = None,
    ablation: str = "resample",
    reference: Tensor | None = None,
    restart: bool = True,
    skip_inert: bool = True,
    progress: bool | None = None,
) -> tuple[PositionalGraph, dict[tuple[str, str], float], Tensor, dict[str, Any]]:
    """(graph, kept {(u@g, d@g): damage}, damages [n_up, n_down, n_groups] (NaN = not
    tested), counts {"n_runs", "n_skipped", "final_metric", "full_metric"}).

    `metric` is a batch metric (`as_batch_metric`); arguments are checked by `acdc`."""
    groups = position_groups(positions, batch=int(clean.shape[0]), seq=int(clean.shape[1]))
    pg = PositionalGraph.of(ef.graph, groups)
    g, n_groups, index = ef.graph, pg.n_groups, groups.index
    ablated = ablated_outputs(ef, ablation, corrupted=corrupted, reference=reference)
    tok, pos = ef.embed_parts(clean)
    base = ef.run(tok, pos)
    valid = pg.valid_mask()
    cut = torch.zeros_like(valid)
    damages = torch.full(valid.shape, float("nan"))
    full = float(metric(base.logits, batch).float().mean())
    current = full
    n_runs = n_skipped = 0
    # inert[u, g]: u's output already equals its ablated value at every position of g.
    inert = torch.zeros(g.n_upstream, n_groups, dtype=torch.bool)
    members = [(index == k).to(base.logits.device) for k in range(n_groups)]
    for i, (o, a) in enumerate(zip(base.outs, ablated, strict=True)):
        same = (o == a.expand_as(o)).all(dim=-1)  # [b, p]
        for k in range(n_groups):
            inert[i, k] = bool(same[members[k]].all())
    up = {name: i for i, name in enumerate(g.upstream)}
    group_of = {label: k for k, label in enumerate(pg.labels)}

    def readers_cut_off(owners: tuple[str, ...]) -> bool:
        for owner in owners:
            node, _, label = owner.partition("@")
            i, k = up[node], group_of[label]
            if (valid[i, :, k] & ~cut[i, :, k]).any():
                return False
        return True

    nodes = reversed(range(g.n_downstream))
    for j in progress_bar(nodes, desc="acdc", total=g.n_downstream, unit="node", progress=progress):
        n_up = g.n_before(j)
        start = g.down_layer[j] if restart else 0
        for k in reversed(range(n_groups)):
            owners = pg.owners(at(g.downstream[j], pg.labels[k]))
            if owners and readers_cut_off(owners):
                cut[:n_up, j, k] = True
                damages[:n_up, j, k] = 0.0
                n_skipped += n_up
                continue
            for i in reversed(range(n_up)):
                trial = cut.clone()
                trial[i, j, k] = True
                if skip_inert and inert[i, k]:
                    cut, damages[i, j, k] = trial, 0.0
                    n_skipped += 1
                    continue
                values = cut_run_metric(
                    ef, metric, batch, tok=tok, pos=pos, cut=trial, ablated=ablated,
                    start_layer=start, base=base, cut_groups=index,
                )  # fmt: skip
                n_runs += 1
                value = float(values.mean())
                damage = current - value
                damages[i, j, k] = damage
                if damage < threshold:
                    cut = trial
                    current = value
    kept = {
        (at(g.upstream[i], pg.labels[k]), at(g.downstream[j], pg.labels[k])): float(
            damages[i, j, k]
        )
        for j in range(g.n_downstream)
        for k in range(n_groups)
        for i in range(g.n_before(j))
        if not cut[i, j, k]
    }
    counts = {"n_runs": n_runs, "n_skipped": n_skipped, "final_metric": current,
              "full_metric": full}  # fmt: skip
    return pg, kept, damages, counts
