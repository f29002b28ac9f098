"""The look-ahead test's pieces against slow oracles, and its verdict on a planted model."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from mesainterp.evidence import EvidenceConfig
from mesainterp.evidence.lookahead import future_node_targets, look_ahead, ranking_auc
from mesainterp.evidence.planted import planted_chain_config, planted_chain_model
from mesainterp.evidence.profile import collect_inputs
from mesainterp.model import random_init_twin
from mesainterp.tasks import get_task


def test_future_node_targets_match_a_loop_over_paths() -> None:
    path = torch.tensor([[3, 1, 4, 0], [2, 5, -1, -1], [0, 2, 5, -1], [4, -1, -1, -1]])
    targets, candidates, usable = future_node_targets(path)
    assert targets.shape == candidates.shape == (4, 6)
    for i, row in enumerate(path.tolist()):
        steps = [v for v in row if v >= 0]
        middle, excluded = set(steps[1:-1]), {steps[0], steps[-1]}
        assert {v for v in range(6) if targets[i, v] > 0} == middle
        assert {v for v in range(6) if not candidates[i, v]} == excluded
        assert bool(usable[i]) == bool(middle)


def test_ranking_auc_equals_sklearn_per_example() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 20, 7, generator=gen, dtype=torch.float64)
    scores[0, :, :2] = 0.5  # ties count one half, as in the ROC AUC
    targets = (torch.rand(20, 7, generator=gen) < 0.4).double()
    targets[:, 0] = 1.0
    targets[:, 1] = 0.0
    candidates = torch.rand(20, 7, generator=gen) < 0.85
    candidates[:, :2] = True
    auc = ranking_auc(scores, targets, candidates)
    for s in range(3):
        for i in range(20):
            keep = candidates[i]
            expected = roc_auc_score(targets[i, keep].numpy(), scores[s, i, keep].numpy())
            assert float(auc[s, i]) == pytest.approx(expected, abs=1e-12)


def test_the_planted_chainer_looks_ahead_and_its_twin_does_not() -> None:
    task = get_task("tree-path")
    model = planted_chain_model(task)
    twin = random_init_twin(planted_chain_config(task), seed=1)
    cfg = EvidenceConfig(n_examples=200, n_boot=50)
    result = look_ahead(collect_inputs(model, twin, task, n_examples=200, seed=0), cfg)
    assert result.passed, result.reason
    assert result.value > 0.9
    assert result.details["auc_by_layer"][0] < result.details["auc_by_layer"][-1]
    on_twin = look_ahead(collect_inputs(twin, twin, task, n_examples=200, seed=0), cfg)
    assert not on_twin.passed
