"""Tests 1 and 2: the goal is represented, and that representation steers behaviour.

goal_representation  The goal label is linearly decodable at the position that
                     predicts the first answer token (before any answer token is
                     emitted), in the best layer, by a `folds`-fold logistic probe.
                     Control: the best of the random-init twin's probe (any layer),
                     the shuffled-label probe (any layer) and the majority class.
                     Pass: value - control >= `goal_margin`.

goal_retargeting     (Mini et al. 2023) At each layer, the goal probe's subspace at
                     every position from the goal token on is set to goal B's class
                     mean on the clean prompt (goal A); success = greedy decoding
                     then gives goal B's exact answer. Control: the same edit along
                     random subspaces of equal rank, rescaled to the probe edit's
                     norm (`n_random` draws). The layer with the largest gap is
                     reported. Pass: value - control >= `retarget_margin`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.layer_probe import RIDGE_ALPHA, label_for, probe_by_layer
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, judged, not_applicable
from mesainterp.probes.causal import ProbeSubspace, retarget
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.probes.linear import fit_ridge, standardize

__all__ = ["goal_representation", "goal_retargeting", "ridge_subspaces"]

REPRESENTATION = "goal_representation"
RETARGETING = "goal_retargeting"


def ridge_subspaces(
    data: ActivationDataset,
    target: str,
    site_indices: Sequence[int],
    *,
    alpha: float = RIDGE_ALPHA,
    rank_tol: float = 1e-6,
) -> list[ProbeSubspace]:
    """The class-contrast subspace of a one-hot ridge probe at each site, in raw
    activation coordinates, with the class means (as `probes.probe_subspaces`
    does for logistic probes, in closed form)."""
    idx = list(site_indices)
    keep, y, _ = label_for(data.labels, target, None)
    raw = data.labels[target][keep].long()
    feats = data.features[idx][:, keep].to(torch.float64)
    std = standardize(feats)
    n_classes = int(y.max()) + 1
    probe = fit_ridge(std(feats), torch.nn.functional.one_hot(y, n_classes).double(), alpha=alpha)
    w = probe.coef / std.scale.transpose(1, 2)  # scores are linear in x / scale
    w = w - w.mean(dim=2, keepdim=True)  # only class contrasts move the argmax
    n_ids = int(raw.max()) + 1
    counts = torch.bincount(raw, minlength=n_ids)
    seen = counts > 0
    out = []
    for j, i in enumerate(idx):
        u, sv, _ = torch.linalg.svd(w[j], full_matrices=False)
        r = max(1, int((sv > rank_tol * sv.max()).sum()))
        sums = torch.zeros(n_ids, feats.shape[-1], dtype=torch.float64).index_add_(0, raw, feats[j])
        means = torch.full_like(sums, float("nan"))
        means[seen] = sums[seen] / counts[seen, None]
        out.append(
            ProbeSubspace(
                site=data.sites[i],
                basis=u[:, :r].float(),
                class_means=means.float(),
                mean=feats[j].mean(0).float(),
            )
        )
    return out


def goal_representation(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 1 (see the module docstring)."""
    criterion = (
        "goal probe accuracy at the first-answer position (best layer) minus the best of"
        f" random-init twin / shuffled labels / majority >= {cfg.goal_margin:g}"
    )
    goal = inputs.profile.goal_label
    if goal is None:
        return not_applicable(
            REPRESENTATION, criterion, cfg.goal_margin, f"task {inputs.task.name!r} has no goal"
        )
    probe = probe_by_layer(inputs, goal, label_column=None, pos=inputs.query_pos, cfg=cfg)
    control, control_name = probe.best_control
    return judged(
        test=REPRESENTATION,
        criterion=criterion,
        metric=f"held-out accuracy of the {goal!r} probe (layer {probe.best_layer})",
        value=probe.value,
        ci=probe.ci,
        control=control,
        control_name=control_name,
        threshold=cfg.goal_margin,
        details=probe.to_dict() | {"ci": "percentile bootstrap over examples"},
    )


def goal_retargeting(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 2 (see the module docstring)."""
    criterion = (
        "fraction decoding goal B's exact answer after steering the goal-probe subspace"
        f" (best layer) minus the same for random subspaces of equal norm >= {cfg.retarget_margin:g}"
    )
    goal, task = inputs.profile.goal_label, inputs.task
    if goal is None:
        return not_applicable(
            RETARGETING, criterion, cfg.retarget_margin, f"task {task.name!r} has no goal"
        )
    pair = task.counterfactual_pairs(cfg.n_pairs, seed=cfg.seed + 10_000)
    if goal not in pair.corrupted.labels or bool(
        (pair.clean.labels[goal] == pair.corrupted.labels[goal]).any()
    ):
        return not_applicable(
            RETARGETING, criterion, cfg.retarget_margin,
            f"family {pair.family!r} does not change the goal {goal!r}",
        )  # fmt: skip
    data = inputs.data
    rows: list[dict[str, Any]] = []
    for layer in range(inputs.n_layers):
        idx = [i for i, s in enumerate(data.sites) if s.layer == layer]
        subspaces = ridge_subspaces(data, goal, idx)
        table = retarget(
            inputs.model, pair, subspaces, target=goal, interventions=("steer",),
            n_random=cfg.n_random, seed=cfg.seed,
        )  # fmt: skip
        to_b = table[table["metric"] == "to_b"]
        probe = to_b[(to_b["intervention"] == "steer") & (to_b["direction"] == "probe")].iloc[0]
        rand = to_b[(to_b["intervention"] == "steer") & (to_b["direction"] == "random")].iloc[0]
        none = to_b[to_b["intervention"] == "none"].iloc[0]
        rows.append(
            {
                "layer": layer,
                "probe": float(probe["value"]),
                "probe_ci": (float(probe["ci_low"]), float(probe["ci_high"])),
                "random": float(rand["value"]),
                "unedited": float(none["value"]),
            }
        )
    best = max(rows, key=lambda r: r["probe"] - r["random"])
    return judged(
        test=RETARGETING,
        criterion=criterion,
        metric=f"fraction steered to goal B's path (layer {best['layer']})",
        value=best["probe"],
        ci=best["probe_ci"],
        control=best["random"],
        control_name="random subspaces",
        threshold=cfg.retarget_margin,
        details={
            "best_layer": best["layer"],
            "by_layer": [r["probe"] for r in rows],
            "random_by_layer": [r["random"] for r in rows],
            "unedited_by_layer": [r["unedited"] for r in rows],
            "n_pairs": cfg.n_pairs,
            "family": pair.family,
            "positions": f"{inputs.goal_pos}..{pair.clean.seq_len - 1}",
            "ci": "Wilson 95% interval",
        },
    )
