"""The look-ahead test's pieces against slow oracles, and its verdict on planted models:
the chainer passes; a model holding only search-free features fails (a baseline
that matches the model means fail, not pass)."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from mesainterp.evidence import EvidenceConfig, twin_controls
from mesainterp.evidence.baselines import edge_table, hard_candidates, search_free_baselines
from mesainterp.evidence.lookahead import future_node_targets, look_ahead, ranking_auc
from mesainterp.evidence.planted import planted_chain_config, planted_chain_model
from mesainterp.evidence.profile import collect_inputs
from mesainterp.tasks import get_task
from tests.unit.evidence.synthetic import one_hot, synthetic_inputs

CFG = EvidenceConfig(n_examples=300, n_boot=400)


def test_future_node_targets_match_a_loop_over_paths() -> None:
    path = torch.tensor(
        [[3, 1, 4, 0, 6], [2, 5, -1, -1, -1], [0, 2, 5, 1, -1], [4, -1, -1, -1, -1]]
    )
    for read in (-1, 0, 1):
        targets, candidates, usable = future_node_targets(path, read)
        assert targets.shape == candidates.shape == (4, 7)
        for i, row in enumerate(path.tolist()):
            steps = [v for v in row if v >= 0]
            future = set(steps[read + 2 : len(steps) - 1])
            excluded = set(steps[: max(0, read + 2)]) | {steps[-1]}
            assert {v for v in range(7) if targets[i, v] > 0} == future
            assert {v for v in range(7) if not candidates[i, v]} == excluded
            assert bool(usable[i]) == bool(future)


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


def test_search_free_features_match_a_loop_over_the_prompt() -> None:
    task = get_task("graph-search")
    inputs = synthetic_inputs(task, lambda b, p, layer: torch.zeros(b.batch_size, 1), n=20)
    degrees = search_free_baselines(inputs)[0].features
    k = task.n_vertices
    for i, inst in enumerate(inputs.task.sample(20, seed=0).instances):
        out = [sum(1 for a, _ in inst.edges if a == v) for v in range(k)]
        into = [sum(1 for _, b in inst.edges if b == v) for v in range(k)]
        assert degrees[i].tolist() == [float(x) for x in out + into]
        inner = {v for v in range(k) if out[v] and into[v]}
        assert {v for v in range(k) if hard_candidates(inputs)[i, v]} == inner
    assert edge_table(inputs).shape[1] == task.max_edges


def test_the_planted_chainer_looks_ahead() -> None:
    task = get_task("tree-path")
    twins = twin_controls(planted_chain_config(task), first_seed=1)
    planted = planted_chain_model(task)
    result = look_ahead(collect_inputs(planted, twins, task, n_examples=300, seed=0), CFG)
    assert result.passed, result.reason
    assert result.details["hard_candidates"]["skill_lower_bound"] > CFG.lookahead_margin
    assert result.details["verdict_pos"] == task.prompt_len
    assert len(result.details["positions"]) > 3


def test_a_model_holding_only_search_free_features_fails() -> None:
    # The review's failing case: degree counts plus goal/start one-hots matched the
    # trained models' AUC. A planted residual that holds exactly those features
    # scores well above the twins, and must still fail.
    task = get_task("tree-path")
    probe = synthetic_inputs(task, lambda b, p, layer: torch.zeros(b.batch_size, 1))
    base = {s.name: s.features for s in search_free_baselines(probe)}
    feats = base["degrees + goal/start one-hots + neighbours"].float()
    inputs = synthetic_inputs(task, lambda b, p, layer: feats)
    result = look_ahead(inputs, CFG)
    assert result.value > 0.75  # a high AUC, far above the noise twins
    assert not result.passed, result.reason
    assert result.control_name.startswith("baseline: ")
    assert result.margin < CFG.lookahead_margin


def test_a_model_holding_the_future_passes_on_synthetic_activations() -> None:
    # The statistic's positive oracle: the future nodes themselves in the residual.
    task = get_task("tree-path")

    def future(b, p, layer):
        t, _, _ = future_node_targets(b.labels["path"], 0)
        return torch.nn.functional.pad(t, (0, task.n_nodes - t.shape[1])) * (layer >= 1)

    assert look_ahead(synthetic_inputs(task, future), CFG).passed
    assert one_hot(torch.tensor([1, -1]), 3).tolist() == [[0, 1, 0], [0, 0, 0]]
