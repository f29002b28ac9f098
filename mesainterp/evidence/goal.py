"""Tests 1 and 2: the goal is represented, and that representation steers behaviour.

goal_representation  The goal label is linearly decodable at the decision position
                     (the first answer position whose target depends on the goal,
                     declared in `profile`), in the best layer, by a `folds`-fold
                     ridge probe. Controls: every random-init twin (any layer),
                     the shuffled-label probe (any layer), the majority class and
                     the search-free baselines that do not contain the goal.
                     Pass: the corrected lower bound of value - best control clears
                     `goal_margin`. Every position's score is reported.

goal_retargeting     (Mini et al. 2023) At each layer, the goal probe's subspace at
                     every position after the goal token is set to goal B's class
                     mean on the clean prompt (goal A); success = greedy decoding
                     then gives goal B's exact answer. Control: the same edit along
                     random subspaces of equal rank, rescaled to the probe edit's
                     norm (`n_random` draws). The layer with the largest gap is
                     reported. Pass: value - control >= `retarget_margin`.

                     Only positions *after* the goal token are edited: editing the
                     goal token's own residual is editing the input (at block 0 it
                     is the same as swapping the goal token), so it cannot show
                     that a downstream goal representation steers the search. That
                     goal-token edit is run and reported beside it as an input-level
                     control. Maze's goal is its target token (`target_pos`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.layer_probe import (
    RIDGE_ALPHA,
    label_for,
    position_table,
    probe_reading,
)
from mesainterp.evidence.margin import judge
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, from_judgement, judged, not_applicable
from mesainterp.evidence.stats import CORRECTION
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
        "goal probe accuracy at the decision position (first answer position whose target"
        " depends on the goal; best layer) minus the best of random-init twins / shuffled"
        f" labels / majority / goal-free search-free baselines >= {cfg.goal_margin:g}"
        " (corrected lower bound)"
    )
    goal = inputs.profile.goal_label
    if goal is None:
        return not_applicable(
            REPRESENTATION, criterion, cfg.goal_margin, f"task {inputs.task.name!r} has no goal"
        )
    reading = probe_reading(inputs, goal, label_column=None, pos=inputs.decision_pos, cfg=cfg)
    j = judge([reading], threshold=cfg.goal_margin, skill=False, n_boot=cfg.n_boot, seed=cfg.seed)
    return from_judgement(
        test=REPRESENTATION,
        criterion=criterion,
        metric=f"held-out accuracy of the {goal!r} probe (pos {j.pos}, layer {j.layer})",
        judgement=j,
        threshold=cfg.goal_margin,
        skill=False,
        details={
            "target": goal,
            "probe": "ridge (one-hot targets), standardised features",
            "positions": position_table(inputs, goal, label_column=None, cfg=cfg),
            "ci": "percentile bootstrap over examples",
            "correction": CORRECTION,
        },
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
        row: dict[str, Any] = {"layer": layer}
        for where, keep in (
            ("downstream", lambda p: p > inputs.goal_pos),
            ("goal token", lambda p: p == inputs.goal_pos),
        ):
            idx = [i for i, s in enumerate(data.sites) if s.layer == layer and keep(s.pos)]
            table = retarget(
                inputs.model, pair, ridge_subspaces(data, goal, idx), target=goal,
                interventions=("steer",), n_random=cfg.n_random, seed=cfg.seed,
            )  # fmt: skip
            to_b = table[table["metric"] == "to_b"]
            steer = to_b[to_b["intervention"] == "steer"]
            probe = steer[steer["direction"] == "probe"].iloc[0]
            rand = steer[steer["direction"] == "random"].iloc[0]
            none = to_b[to_b["intervention"] == "none"].iloc[0]
            row[where] = {
                "probe": float(probe["value"]),
                "probe_ci": (float(probe["ci_low"]), float(probe["ci_high"])),
                "random": float(rand["value"]),
                "unedited": float(none["value"]),
            }
        rows.append(row)
    down = [r["downstream"] | {"layer": r["layer"]} for r in rows]
    best = max(down, key=lambda r: r["probe"] - r["random"])
    ci = best["probe_ci"]
    return judged(
        test=RETARGETING,
        criterion=criterion,
        metric=f"fraction steered to goal B's path (downstream edit, layer {best['layer']})",
        value=best["probe"],
        ci=ci,
        control=best["random"],
        control_name="random subspaces",
        threshold=cfg.retarget_margin,
        cells=inputs.n_layers,
        details={
            "best_layer": best["layer"],
            "by_layer": [r["probe"] for r in down],
            "random_by_layer": [r["random"] for r in down],
            "unedited_by_layer": [r["unedited"] for r in down],
            "input_level_control": {
                "what": "the same edit on the goal token's own residual only (an input edit)",
                "by_layer": [r["goal token"]["probe"] for r in rows],
                "random_by_layer": [r["goal token"]["random"] for r in rows],
            },
            "n_pairs": cfg.n_pairs,
            "family": pair.family,
            "positions": f"{inputs.goal_pos + 1}..{pair.clean.seq_len - 1} (after the goal token)",
            "ci": "Wilson 95% interval; p times the layers searched (Bonferroni)",
        },
    )
