"""Greedy decoding agrees with teacher-forced exact-path scoring."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.tasks import GraphSearchTask, ICLRegressionTask, MazeTask, TreePathTask
from mesainterp.tasks.base import IGNORE_INDEX
from mesainterp.tasks.decode import greedy_decode, greedy_exact


def _flawed_model(task, batch):
    """A hand-made 'model': right on correct prefixes except where (goal + pos) % 4 == 0.

    It sees only tokens; the answers it knows are looked up by prompt.
    """
    p0 = batch.prompt_len
    answers = {
        tuple(batch.inputs[b, :p0].tolist()): batch.targets[b].tolist()
        for b in range(batch.batch_size)
    }

    def model(tokens):
        n, t = tokens.shape
        logits = torch.zeros(n, t, task.d_vocab_out)
        for b in range(n):
            row = tokens[b].tolist()
            target = answers[tuple(row[:p0])]
            goal = row[p0 - 2]
            for pos in range(p0 - 1, t):
                on_track = all(row[i + 1] == target[i] for i in range(p0 - 1, pos))
                want = target[pos] if target[pos] != IGNORE_INDEX else task.pad
                if not on_track:
                    want = task.end
                elif (goal + pos) % 4 == 0 and target[pos] != IGNORE_INDEX:
                    want = (want + 1) % task.d_vocab_out  # a planted mistake
                logits[b, pos, want] = 1.0
        return logits

    return model


@pytest.mark.parametrize(
    "task", [TreePathTask(), MazeTask(grid_n=3), GraphSearchTask()], ids=lambda t: t.name
)
def test_greedy_matches_teacher_forced_score(task):
    batch = task.sample(24, seed=0)
    model = _flawed_model(task, batch)
    teacher = task.score(model(batch.inputs), batch)["exact_path"]
    greedy = greedy_exact(model, batch)
    assert torch.equal(teacher, greedy)
    assert teacher.any() and not teacher.all()  # both outcomes occur
    tokens = greedy_decode(model, batch)
    assert torch.equal(tokens[:, : batch.prompt_len], batch.inputs[:, : batch.prompt_len])


def test_continuous_inputs_refused():
    task = ICLRegressionTask(d_x=2, n_context=3, d_model=4)
    with pytest.raises(ConfigError, match="inputs"):
        greedy_decode(lambda x: x, task.sample(2, seed=0))


def test_runs_a_real_bridge():
    from mesainterp.model import ModelConfig, build_model

    task = TreePathTask(n_nodes=5, max_depth=2)
    cfg = ModelConfig(
        n_layers=1,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=32,
        d_vocab=task.d_vocab,
        n_ctx=task.seq_len,
        seed=0,
    )
    model = build_model(cfg)
    batch = task.sample(4, seed=1)
    tokens = greedy_decode(model, batch)
    assert tokens.shape == batch.inputs.shape and tokens.max() < task.d_vocab
    with torch.no_grad():
        teacher = task.score(model(batch.inputs), batch)["exact_path"]
    assert torch.equal(greedy_exact(model, batch), teacher)
