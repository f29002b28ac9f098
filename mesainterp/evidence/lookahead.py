"""Test 3, look-ahead (Jenner et al. 2024): the future of the answer is decodable early.

At a position that reads path[k] (k = -1 for prompt positions and ":"), a linear
probe with one output per node (multi-output ridge on standardised resid_post,
every layer) is asked which nodes the path will pass through *after the next
token*: `path[k+2 .. L-2]`. The goal (in the prompt), the nodes already emitted
and the next token are left out of the ranking; examples with no such node are
left out. Per example the score is the AUC of the probe's node scores, future
nodes against the other candidates.

Why a set and not "the node two steps ahead": node labels are shuffled in every
instance, so a node's identity is linearly readable only where the residual holds
that node's token; a model that plans by collecting the path's nodes (backward
chaining from the goal collects the goal's ancestors) holds them as a set.

The verdict is read at the declared decision position (`profile.declared_positions`:
the first answer position whose target depends on the goal); every position's
AUC is reported. Controls, on the same folds and resamples: every random-init
twin, shuffled labels (rows of the node targets permuted), the constant 0.5,
and every search-free baseline (degree counts, start/goal one-hots and their
neighbours, maze Manhattan distances) put through the same ridge ranking. The
skill over the best of them, `(AUC - control) / (1 - control)`, must clear
`lookahead_margin` on all candidates *and* on the candidates a degree heuristic
cannot reject (`baselines.hard_candidates`); the test's p is the larger of the
two (an intersection-union test needs no further correction).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from mesainterp.evidence.baselines import hard_candidates, search_free_baselines
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.layer_probe import position_role
from mesainterp.evidence.margin import Judgement, Outcomes, Reading, judge
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, from_judgement, not_applicable
from mesainterp.evidence.stats import CORRECTION
from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.linear import fit_ridge, standardize

__all__ = ["future_node_targets", "look_ahead", "look_ahead_reading", "ranking_auc"]

NAME = "look_ahead"
RIDGE_ALPHA = 1.0


def future_node_targets(
    path: Tensor, read: int = -1
) -> tuple[Float[Tensor, "n nodes"], Bool[Tensor, "n nodes"], Bool[Tensor, " n"]]:
    """From paths [n, steps] (padded with -1), at a position reading path[`read`]:
    (targets, candidates, usable).

    targets[i, v] = 1 where v is one of path[read+2 .. L-2]; candidates drop
    path[0 .. read+1] and the goal; usable marks paths with at least one target.
    """
    path = path.long()
    n, n_nodes = path.shape[0], int(path.max()) + 1
    length = (path >= 0).sum(1)
    rows = torch.arange(n)
    targets = torch.zeros(n, n_nodes)
    steps = torch.arange(path.shape[1])[None]
    future = (steps >= read + 2) & (steps < (length - 1)[:, None])
    r, c = torch.nonzero(future, as_tuple=True)
    targets[r, path[r, c]] = 1.0
    candidates = torch.ones(n, n_nodes, dtype=torch.bool)
    seen = (steps <= read + 1) & (steps < length[:, None])
    r, c = torch.nonzero(seen, as_tuple=True)
    candidates[r, path[r, c]] = False
    candidates[rows, path[rows, (length - 1).clamp_min(0)].clamp_min(0)] = False
    return targets, candidates, targets.sum(1) > 0


def ranking_auc(
    scores: Float[Tensor, "sites n nodes"],
    targets: Float[Tensor, "n nodes"],
    candidates: Bool[Tensor, "n nodes"],
) -> Float[Tensor, "sites n"]:
    """Per example and site: P(a target node outscores a non-target candidate), ties 1/2."""
    pos = (targets > 0) & candidates
    neg = (targets == 0) & candidates
    pairs = (pos[:, :, None] & neg[:, None, :]).to(scores.dtype)  # [n, K, K]
    above = (scores[..., :, None] > scores[..., None, :]).to(scores.dtype)
    ties = (scores[..., :, None] == scores[..., None, :]).to(scores.dtype)
    wins = ((above + 0.5 * ties) * pairs).sum((-1, -2))
    return wins / pairs.sum((-1, -2)).clamp_min(1.0)


def _cv_node_scores(
    features: Float[Tensor, "sites n d"],
    targets: Float[Tensor, "n nodes"],
    *,
    folds: int,
    seed: int,
) -> Float[Tensor, "sites n nodes"]:
    """Held-out ridge node scores for every site at once (standardised per training fold)."""
    n = features.shape[1]
    out = torch.zeros(features.shape[0], n, targets.shape[1], dtype=torch.float64)
    for train, test in kfold_indices(n, k=folds, seed=seed):
        std = standardize(features[:, train])
        probe = fit_ridge(std(features[:, train]), targets[train].double(), alpha=RIDGE_ALPHA)
        out[:, test] = probe.predict(std(features[:, test])).double()
    return out


def _read_index(inputs: EvidenceInputs, pos: int) -> int:
    """The path index a position reads (-1 up to and including ":")."""
    return max(-1, pos - inputs.query_pos - 1)


def look_ahead_reading(
    inputs: EvidenceInputs, cfg: EvidenceConfig, pos: int, *, hard: bool
) -> Reading | None:
    """Per-example AUCs of the model and every control at `pos` (None: too few examples).

    hard: rank only among the candidates a degree heuristic cannot reject.
    """
    targets, candidates, usable = future_node_targets(
        inputs.data.labels["path"], _read_index(inputs, pos)
    )
    if hard:
        candidates = candidates & hard_candidates(inputs)[:, : candidates.shape[1]]
        usable = usable & ((targets > 0) & candidates).any(1) & ((targets == 0) & candidates).any(1)
    if int(usable.sum()) < 4 * cfg.folds:
        return None
    targets, candidates = targets[usable], candidates[usable]
    fold = {"folds": cfg.folds, "seed": cfg.seed}

    def auc(x: Tensor, t: Tensor = targets, c: Tensor = candidates) -> Outcomes:
        return Outcomes(metric="auc", values=ranking_auc(_cv_node_scores(x, t, **fold), t, c))

    controls = {
        f"random-init seed {i}": auc(inputs.at(pos, twin=i).features[:, usable])
        for i in range(len(inputs.twin_data))
    }
    model_x = inputs.at(pos).features[:, usable]
    perm = torch.randperm(targets.shape[0], generator=torch.Generator().manual_seed(cfg.seed + 1))
    # Shuffled rows, scored on the true targets: the node marginals without the link.
    shuffled = _cv_node_scores(model_x, targets[perm], **fold)
    controls["shuffled labels"] = Outcomes(
        metric="auc", values=ranking_auc(shuffled, targets, candidates)
    )
    controls["constant"] = Outcomes(metric="auc", values=torch.full((1, targets.shape[0]), 0.5))
    for base in search_free_baselines(inputs):
        controls[f"baseline: {base.name}"] = auc(base.features[usable][None])
    return Reading(pos=pos, model=auc(model_x), controls=controls)


def _position_table(inputs: EvidenceInputs, cfg: EvidenceConfig) -> list[dict[str, Any]]:
    """The model's mean AUC at every position and layer (no controls)."""
    rows = []
    for pos in inputs.positions:
        targets, candidates, usable = future_node_targets(
            inputs.data.labels["path"], _read_index(inputs, pos)
        )
        if int(usable.sum()) < 4 * cfg.folds:
            continue
        t, c = targets[usable], candidates[usable]
        x = inputs.at(pos).features[:, usable]
        by_layer = ranking_auc(_cv_node_scores(x, t, folds=cfg.folds, seed=cfg.seed), t, c).mean(1)
        rows.append(
            {
                "pos": pos,
                "role": position_role(inputs, pos),
                "n": int(usable.sum()),
                "by_layer": by_layer.tolist(),
                "best_layer": int(by_layer.argmax()),
                "best": float(by_layer.max()),
            }
        )
    return rows


def _summary(j: Judgement) -> dict[str, Any]:
    return {
        "auc": j.value,
        "skill": j.margin,
        "skill_lower_bound": j.margin_low,
        "p_value": j.p_value,
        "layer": j.layer,
        "control": j.control_name,
        "controls": j.controls,
        "random_init_distribution": j.random_init,
    }


def look_ahead(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 3 (see the module docstring)."""
    criterion = (
        "at the decision position, a per-node ridge probe (best layer) ranks the path's nodes"
        " after the next token above the other candidates (per-example AUC); skill = (AUC -"
        " best of random-init twins / shuffled / 0.5 / search-free baselines) / (1 - that)"
        f" >= {cfg.lookahead_margin:g} on all candidates and on heuristic-hard candidates"
        " (corrected lower bounds)"
    )
    if inputs.profile.kind != "path" or "path" not in inputs.data.labels:
        return not_applicable(
            NAME, criterion, cfg.lookahead_margin, f"task {inputs.task.name!r} has no path answer"
        )
    pos = inputs.decision_pos
    readings = {h: look_ahead_reading(inputs, cfg, pos, hard=h) for h in (False, True)}
    if readings[False] is None or readings[True] is None:
        return not_applicable(
            NAME, criterion, cfg.lookahead_margin,
            "too few examples whose path has a node after the next token at the decision position",
        )  # fmt: skip
    judged = {
        h: judge([r], threshold=cfg.lookahead_margin, skill=True, n_boot=cfg.n_boot, seed=cfg.seed)
        for h, r in readings.items()
        if r is not None
    }
    # Intersection-union: the weaker of the two readings carries the verdict.
    worst = max(judged.values(), key=lambda j: j.p_value)
    return from_judgement(
        test=NAME,
        criterion=criterion,
        metric=f"skill of the future-node ranking over {worst.control_name} (layer {worst.layer})",
        judgement=worst,
        threshold=cfg.lookahead_margin,
        skill=True,
        details={
            "all_candidates": _summary(judged[False]),
            "hard_candidates": _summary(judged[True]),
            "carried_by": "hard candidates" if worst is judged[True] else "all candidates",
            "positions": _position_table(inputs, cfg),
            "probe": "multi-output ridge (one output per node), standardised features",
            "ci": "percentile bootstrap over examples",
            "correction": CORRECTION,
        },
    )
