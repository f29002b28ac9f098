"""Test 3, look-ahead (Jenner et al. 2024): the future of the answer is decodable early.

At the position that predicts the first answer token (`path[0]`), a linear probe
with one output per node (multi-output ridge on standardised resid_post, every
layer) is asked which nodes the path will pass through *later*: its intermediate
nodes `path[1 .. L-1]`, emitted after this position. The goal (in the prompt) and
`path[0]` (the token being predicted here) are left out of the ranking; examples
whose path has no intermediate node are left out. Per example the score is the
AUC of the probe's node scores, intermediate nodes against the other nodes.

Why a set and not "the node two steps ahead": node labels are shuffled in every
instance, so a node's identity is linearly readable only where the residual holds
that node's token; a model that plans by collecting the path's nodes (backward
chaining from the goal collects the goal's ancestors) holds them as a set, and
its order is implied by the graph. A probe for one ordered step then fails even
on the planted chainer, whose every future step is computed before it answers
(the ordered step-two probe this test used before failed on it).

Controls, on the same folds: the random-init twin's activations and shuffled
labels (rows of the node targets permuted); a constant predictor scores 0.5. The
untrained twin is a strong control here (AUC about 0.75-0.88): nodes with more
edges appear more often in the prompt, and intermediate nodes always have a
child. So the verdict is on the skill over the best control,
`(AUC - control) / (1 - control)`, the share of the gap the control leaves that
the model closes; pass: skill >= `lookahead_margin`.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, judged, not_applicable
from mesainterp.evidence.stats import bootstrap_mean
from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.linear import fit_ridge, standardize

__all__ = ["future_node_targets", "look_ahead", "ranking_auc"]

NAME = "look_ahead"
RIDGE_ALPHA = 1.0


def future_node_targets(
    path: Tensor,
) -> tuple[Float[Tensor, "n nodes"], Bool[Tensor, "n nodes"], Bool[Tensor, " n"]]:
    """From paths [n, steps] (padded with -1): (targets, candidates, usable).

    targets[i, v] = 1 where v is an intermediate node of path i; candidates drop
    path[0] and the goal; usable marks paths with at least one intermediate node.
    """
    path = path.long()
    n, n_nodes = path.shape[0], int(path.max()) + 1
    length = (path >= 0).sum(1)
    rows = torch.arange(n)
    targets = torch.zeros(n, n_nodes)
    steps = torch.arange(path.shape[1])[None]
    middle = (steps >= 1) & (steps < (length - 1)[:, None])
    r, c = torch.nonzero(middle, as_tuple=True)
    targets[r, path[r, c]] = 1.0
    candidates = torch.ones(n, n_nodes, dtype=torch.bool)
    candidates[rows, path[:, 0].clamp_min(0)] = False
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


def look_ahead(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 3 (see the module docstring)."""
    criterion = (
        "at the position predicting path[0], a per-node ridge probe (best layer) ranks the"
        " path's later intermediate nodes above the other nodes (per-example AUC; goal and"
        " path[0] excluded); skill = (AUC - best of random-init twin / shuffled labels /"
        f" 0.5) / (1 - that control) >= {cfg.lookahead_margin:g}"
    )
    if inputs.profile.kind != "path" or "path" not in inputs.data.labels:
        return not_applicable(
            NAME, criterion, cfg.lookahead_margin, f"task {inputs.task.name!r} has no path answer"
        )
    targets, candidates, usable = future_node_targets(inputs.data.labels["path"])
    if int(usable.sum()) < 4 * cfg.folds:
        return not_applicable(
            NAME, criterion, cfg.lookahead_margin,
            "too few examples whose path has a node between its first step and the goal",
        )  # fmt: skip
    targets, candidates = targets[usable], candidates[usable]
    pos = inputs.query_pos
    model_x = inputs.at(pos).features[:, usable]
    twin_x = inputs.at(pos, twin=True).features[:, usable]
    fold = {"folds": cfg.folds, "seed": cfg.seed}
    per_example = ranking_auc(_cv_node_scores(model_x, targets, **fold), targets, candidates)
    twin = ranking_auc(_cv_node_scores(twin_x, targets, **fold), targets, candidates).mean(1)
    perm = torch.randperm(targets.shape[0], generator=torch.Generator().manual_seed(cfg.seed + 1))
    shuffled = ranking_auc(
        _cv_node_scores(model_x, targets[perm], **fold), targets[perm], candidates[perm]
    ).mean(1)
    values = per_example.mean(1)
    best = int(values.argmax())
    controls = {
        "random-init twin": float(twin.max()),
        "shuffled labels": float(shuffled.max()),
        "constant": 0.5,
    }
    control_name = max(controls, key=lambda k: controls[k])
    control = controls[control_name]
    room = max(1.0 - control, 1e-12)
    auc = float(values[best])
    low, high = bootstrap_mean(per_example[best], n_boot=cfg.n_boot, seed=cfg.seed)
    return judged(
        test=NAME,
        criterion=criterion,
        metric=f"skill of the future-node ranking over {control_name} (layer {best})",
        value=(auc - control) / room,
        ci=((low - control) / room, (high - control) / room),
        control=control,
        control_name=control_name,
        threshold=cfg.lookahead_margin,
        compare_to_control=False,
        details={
            "auc": auc,
            "auc_ci": [low, high],
            "auc_by_layer": values.tolist(),
            "random_init_by_layer": twin.tolist(),
            "shuffled_by_layer": shuffled.tolist(),
            "best_layer": best,
            "pos": pos,
            "n": int(targets.shape[0]),
            "probe": "multi-output ridge (one output per node), standardised features",
            "ci": "percentile bootstrap over examples of the AUC, mapped to skill",
        },
    )
