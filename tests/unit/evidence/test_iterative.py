"""Iterative computation: free labels are left out; a layer-ordered rise passes and
everything-in-one-layer fails; the planted chainer passes. Declared positions:
the goal and maze target tokens, no silent fallback."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import MesaInterpError
from mesainterp.evidence import EvidenceConfig, twin_controls
from mesainterp.evidence.goal import goal_representation
from mesainterp.evidence.iterative import chain_labels, iterative_computation, ordered_lead
from mesainterp.evidence.planted import planted_chain_config, planted_chain_model
from mesainterp.evidence.profile import collect_inputs, declared_positions
from mesainterp.tasks import get_task
from tests.unit.evidence.synthetic import one_hot, synthetic_inputs

CFG = EvidenceConfig(n_examples=400, n_boot=400, state_ranks=3)


def test_chain_labels_leave_out_the_goal_and_path_start() -> None:
    path = torch.tensor([[7, 3, 5, 9], [4, 2, -1, -1], [1, 6, 8, -1]])
    assert chain_labels(path, 3).tolist() == [[5, 3, -1], [-1, -1, -1], [6, -1, -1]]


def test_ordered_lead_by_hand() -> None:
    floor = torch.tensor([0.0, 0.0])
    staircase = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])[..., None]  # [ranks, layers, 1]
    same_layer = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])[..., None]
    assert float(ordered_lead(staircase, floor)[0][0]) == pytest.approx(1.0)
    assert float(ordered_lead(same_layer, floor)[0][0]) == pytest.approx(0.0)


def _chain_at_layers(onset: list[int]):
    """Residual holding the k-th node back from the goal from layer onset[k-1] on."""

    def write(batch, pos, layer):
        chain = chain_labels(batch.labels["path"], len(onset))
        k = int(batch.labels["path"].max()) + 1
        parts = [one_hot(chain[:, r], k) * (layer >= onset[r]) for r in range(len(onset))]
        return torch.cat(parts, 1)

    return write


def test_a_layer_ordered_rise_passes_and_one_layer_fails() -> None:
    task = get_task("tree-path")
    ordered = iterative_computation(synthetic_inputs(task, _chain_at_layers([1, 2, 3])), CFG)
    assert ordered.passed, ordered.reason
    one_layer = iterative_computation(synthetic_inputs(task, _chain_at_layers([1, 1, 1])), CFG)
    assert not one_layer.passed and one_layer.value < 0.1, one_layer.reason
    never = iterative_computation(synthetic_inputs(task, _chain_at_layers([1, 2, 9])), CFG)
    assert not never.passed and "never rise" in never.reason


def test_the_planted_chainer_computes_iteratively() -> None:
    task = get_task("tree-path")
    twins = twin_controls(planted_chain_config(task), first_seed=1)
    inputs = collect_inputs(planted_chain_model(task), twins, task, n_examples=400, seed=0)
    result = iterative_computation(inputs, CFG)
    assert result.passed, result.reason
    assert len(result.details["random_init_distribution"]) == 5
    assert max(result.details["random_init_distribution"]) < result.margin_low


def test_goal_representation_is_read_at_the_decision_position() -> None:
    # The goal held at its own token only (an input copy, nothing moved) fails;
    # moved to the decision position it passes.
    task = get_task("tree-path")
    goal_pos, _, decision_pos = declared_positions(task)

    def held_at(where):
        return lambda b, p, layer: one_hot(b.labels["goal"], task.n_nodes) * (p == where)

    cfg = EvidenceConfig(n_examples=400, n_boot=400)
    assert not goal_representation(synthetic_inputs(task, held_at(goal_pos)), cfg).passed
    moved = goal_representation(synthetic_inputs(task, held_at(decision_pos)), cfg)
    assert moved.passed and moved.details["verdict_pos"] == decision_pos


def test_declared_positions_use_the_maze_target_and_refuse_a_silent_fallback() -> None:
    maze = get_task("maze", grid_n=3)
    goal_pos, query_pos, decision_pos = declared_positions(maze)
    assert goal_pos == maze.target_pos and query_pos == maze.prompt_len - 1
    assert decision_pos == maze.prompt_len
    batch = maze.sample(4, seed=0)
    assert (batch.inputs[:, goal_pos] == batch.labels["target"]).all()
    for name in ("tree-path", "graph-search"):
        task = get_task(name)
        b = task.sample(4, seed=0)
        assert (b.inputs[:, declared_positions(task)[0]] == b.labels["goal"]).all()

    class NoGoalPos:
        name = "maze"

        def sample(self, n, *, seed):
            return maze.sample(n, seed=seed)

    with pytest.raises(MesaInterpError, match="target_pos"):
        declared_positions(NoGoalPos())  # type: ignore[arg-type]


def test_ordered_lead_is_bounded_when_a_rank_does_not_rise() -> None:
    # A twin whose accuracies hover at the majority rate: no lead, no blow-up.
    floor = torch.tensor([0.2, 0.2])
    flat = torch.tensor([[0.2, 0.2001, 0.19], [0.21, 0.18, 0.2]])[..., None]
    lead, _ = ordered_lead(flat, floor)
    assert -1.0 <= float(lead[0]) <= 1.0 and abs(float(lead[0])) < 0.2
