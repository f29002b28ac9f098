"""Task token roles, and edges scored per role on a task's own pairs."""

from __future__ import annotations

import torch

from mesainterp.attribution import edge_attribution, position_groups
from mesainterp.model import ModelConfig, build_model
from mesainterp.tasks import MazeTask, TreePathTask, task_roles


def test_tree_path_roles_point_at_the_goal_its_edge_and_the_answer_steps() -> None:
    task = TreePathTask(n_nodes=6, max_depth=3)
    pair = task.counterfactual_pairs(8, seed=0)
    batch = pair.clean
    roles = task_roles(task, batch)
    rows = torch.arange(batch.batch_size)
    tokens, goal = batch.inputs, batch.labels["goal"]
    assert (tokens[rows, roles["goal"]] == goal).all()
    assert (tokens[rows, roles["goal edge child"]] == goal).all()
    assert (tokens[rows, roles["goal edge parent"]] == batch.labels["parent"][rows, goal]).all()
    # The edge into the goal moves between examples: one role, several positions.
    assert len(set(roles["goal edge child"].tolist())) > 1
    # Answer step k predicts path token k.
    first = roles["answer step 0"]
    assert (batch.targets[rows, first] == batch.labels["path"][:, 0]).all()
    assert int(roles[f"answer step {batch.seq_len - batch.prompt_len}"][0]) == batch.seq_len - 1
    groups = position_groups(roles, batch=batch.batch_size, seq=batch.seq_len)
    assert groups.labels[-1] == "other"


def test_scores_per_task_role_sum_to_the_agnostic_scores() -> None:
    task = TreePathTask(n_nodes=6, max_depth=3)
    pair = task.counterfactual_pairs(6, seed=1)
    model = build_model(ModelConfig(
        n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=task.d_vocab,
        n_ctx=task.seq_len, seed=0,
    ))  # fmt: skip
    inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
                  metric=task.default_metric(pair), batch=pair.clean)  # fmt: skip
    roles = task_roles(task, pair.clean)
    plain = edge_attribution(model, **inputs)
    split = edge_attribution(model, positions=roles, **inputs)
    assert (split.total() - plain.scores).abs().max() <= 1e-5
    at = {label: split.scores[:, :, g] for g, label in enumerate(split.graph.labels)}
    # The pair differs only in the goal token: everything reaching the metric starts
    # there, and the edge list before it is the same in both runs (causal attention).
    assert at["goal"].abs().max() > 1e-3
    assert at["goal edge child"].abs().max() == 0 and at["goal edge parent"].abs().max() == 0


def test_every_task_has_answer_step_roles() -> None:
    task = MazeTask()
    batch = task.sample(2, seed=0)
    roles = task_roles(task, batch)
    assert list(roles) == [f"answer step {k}" for k in range(batch.seq_len - batch.prompt_len + 1)]
