"""Test 4, iterative computation: the search state is built up layer after layer.

The search state is the chain back from the goal: the k-th node back from the
goal on the path, k = 1..`state_ranks` (on tree-path the goal's k-th ancestor).
Labels the model gets for free are left out: the goal itself (copied from the
prompt) and path[0] (the root, start or origin, which ":" predicts without
needing the goal); an example contributes to rank k only where that node is
neither.

At each declared position (goal token, ":", decision position; see `profile`)
and every layer a ridge probe decodes each rank. A rank's *progress* at layer l
is (accuracy(l) - majority) / (best accuracy over layers - majority), clipped to
[0, 1] (the denominator at least `MIN_RISE`): how much of its full rise it has
reached. Iterative computation predicts a layer-ordered
rise: the (k-1)-th node reaches its rise at a layer where the k-th has not yet,
so the *lead* max_l [progress_{k-1}(l) - progress_k(l)] is large for every
consecutive pair. The statistic is the weakest pair's lead. A model that
computes every rank in the same layer has leads near 0 and fails (the one-layer
lookup model of `planted_lookup` is the real-model case); a rank that
never rises (full rise < `MIN_RISE`) fails the test outright (nothing to order).

Statistics: the paired bootstrap of `stats` (every rank's accuracies resampled
together, the statistic recomputed per draw); p is the tail of "lead <=
threshold", times the 3 positions searched (Bonferroni). The random-init twins'
leads are reported beside it. icl-regression has no ordered intermediate
states to decode (its algorithm is tested by `algorithmic_match`): not applicable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.layer_probe import cv_predictions, label_for
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, not_applicable
from mesainterp.evidence.stats import ALPHA, CORRECTION, bootstrap_weights, one_sided_p

__all__ = ["MIN_RISE", "chain_labels", "iterative_computation", "ordered_lead"]

NAME = "iterative_computation"
# A rank must rise by at least this much accuracy over the majority class at its
# best layer to count as computed at all (below it, its progress curve is noise).
MIN_RISE = 0.1


def chain_labels(path: Tensor, ranks: int) -> Tensor:
    """[n, ranks]: the k-th node back from the goal (column k-1), -1 where it is the
    goal, path[0] or absent (the free labels)."""
    path = path.long()
    length = (path >= 0).sum(1)
    out = torch.full((path.shape[0], ranks), -1, dtype=torch.long)
    for k in range(1, ranks + 1):
        idx = length - 1 - k
        ok = idx >= 1
        out[ok, k - 1] = path[ok, idx[ok]]
    return out


def ordered_lead(acc: Tensor, floor: Tensor) -> tuple[Tensor, Tensor]:
    """From accuracies [ranks, layers, draws] and majority rates [ranks]:
    (weakest consecutive lead [draws], full rise per rank [ranks, draws])."""
    rise = acc.max(1).values - floor[:, None]  # [ranks, draws]
    # Progress in [0, 1]; a rank that barely rises is divided by MIN_RISE, not by ~0,
    # so noise around the majority rate cannot make a lead.
    progress = ((acc - floor[:, None, None]) / rise[:, None].clamp_min(MIN_RISE)).clamp(0, 1)
    lead = (progress[:-1] - progress[1:]).max(1).values  # [ranks - 1, draws]
    return lead.min(0).values, rise


def _accuracies(
    features: Tensor, chain: Tensor, cfg: EvidenceConfig, weights: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-draw held-out accuracy [ranks, layers, draws] and majority rate [ranks]."""
    accs, floors = [], []
    for k in range(chain.shape[1]):
        keep, y, _ = label_for({"c": chain[:, k]}, "c", None)
        pred = cv_predictions(features[:, keep], y, is_class=True, folds=cfg.folds, seed=cfg.seed)
        w = weights[:, keep]
        accs.append(((pred == y[None]).double() @ w.T) / w.sum(1)[None])
        floors.append(float(torch.bincount(y).max()) / y.numel())
    return torch.stack(accs), torch.tensor(floors, dtype=torch.float64)


def iterative_computation(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 4 (see the module docstring)."""
    criterion = (
        f"layer-ordered rise of the nodes 1..{cfg.state_ranks} back from the goal (goal and"
        " path[0] left out): the weakest lead of the (k-1)-th over the k-th node's progress"
        f" >= {cfg.iterative_margin:g} (corrected lower bound), every rank rising >= {MIN_RISE:g}"
    )
    if inputs.profile.kind != "path":
        return not_applicable(
            NAME, criterion, cfg.iterative_margin,
            "no ordered intermediate states to decode (see algorithmic_match)",
        )  # fmt: skip
    if inputs.n_layers < 2 or cfg.state_ranks < 2:
        return not_applicable(
            NAME, criterion, cfg.iterative_margin, "needs >= 2 layers and >= 2 ranks"
        )
    chain = chain_labels(inputs.data.labels["path"], cfg.state_ranks)
    counts = (chain >= 0).sum(0)
    ranks = [k for k in range(chain.shape[1]) if int(counts[k]) >= 4 * cfg.folds]
    if len(ranks) < 2 or ranks != list(range(len(ranks))):
        return not_applicable(
            NAME, criterion, cfg.iterative_margin, "fewer than 2 ranks with enough examples"
        )
    chain = chain[:, ranks]
    n = chain.shape[0]
    weights = torch.cat(
        [torch.ones(1, n, dtype=torch.float64), bootstrap_weights(n, cfg.n_boot, cfg.seed)]
    )
    positions = sorted({inputs.goal_pos, inputs.query_pos, inputs.decision_pos})
    rows: list[dict[str, Any]] = []
    for pos in positions:
        acc, floor = _accuracies(inputs.at(pos).features, chain, cfg, weights)
        lead, rise = ordered_lead(acc, floor)
        twin_leads = []
        for i in range(len(inputs.twin_data)):
            t_acc, t_floor = _accuracies(inputs.at(pos, twin=i).features, chain, cfg, weights[:1])
            twin_leads.append(float(ordered_lead(t_acc, t_floor)[0][0]))
        risen = bool((rise[:, 0] >= MIN_RISE).all())
        p = float(one_sided_p(lead[1:], cfg.iterative_margin)) if risen else 1.0
        q = torch.quantile(lead[1:], torch.tensor([0.025, 0.975], dtype=torch.float64))
        rows.append(
            {
                "pos": pos,
                "lead": float(lead[0]),
                "lead_ci": (float(q[0]), float(q[1])),
                "p": p,
                "full_rise_by_rank": rise[:, 0].tolist(),
                "accuracy_by_rank_and_layer": acc[:, :, 0].tolist(),
                "random_init_leads": twin_leads,
            }
        )
    best = min(rows, key=lambda r: (r["p"], -r["lead"]))
    p_value = min(1.0, best["p"] * len(positions))
    low = [k + 1 for k, r in enumerate(best["full_rise_by_rank"]) if r < MIN_RISE]
    ok = p_value <= ALPHA
    reason = (
        f"rank(s) {low} never rise >= {MIN_RISE:g} over the majority class"
        if low
        else f"weakest lead = {best['lead']:.3f} vs threshold {cfg.iterative_margin:g}:"
        f" p = {p_value:.3g} {'<=' if ok else '>'} {ALPHA:g}"
    )
    return EvidenceResult(
        test=NAME,
        criterion=criterion,
        metric=f"weakest layer-ordered lead (pos {best['pos']})",
        value=best["lead"],
        ci_low=best["lead_ci"][0],
        ci_high=best["lead_ci"][1],
        control=max(best["random_init_leads"]),
        control_name="random-init twins' best lead",
        margin=best["lead"],
        threshold=cfg.iterative_margin,
        verdict="pass" if ok else "fail",
        reason=reason,
        margin_low=best["lead_ci"][0],
        p_value=p_value,
        p_adjusted=p_value,
        details={
            "label": "k-th node back from the goal (goal, path[0] left out)",
            "ranks": [k + 1 for k in ranks],
            "positions": rows,
            "verdict_pos": best["pos"],
            "random_init_distribution": best["random_init_leads"],
            "ci": "percentile bootstrap over examples",
            "correction": CORRECTION,
        },
    )
