"""Held-out evaluation: input validation, seed streams, metrics and their oracle."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import MesaInterpError
from mesainterp.model import ModelConfig, build_model
from mesainterp.stats import wilson_interval
from mesainterp.tasks import IGNORE_INDEX, get_task
from mesainterp.training import HELD_OUT_SEED_BASE, evaluate, held_out_seed, train_seed
from mesainterp.training.evaluation import batch_loss, validate_inputs

TASK = get_task("tree-path", n_nodes=5, max_depth=2)


def model_for(task, **changes):
    fields = {
        "n_layers": 1,
        "d_model": 16,
        "n_heads": 2,
        "d_head": 8,
        "d_mlp": 32,
        "d_vocab": task.d_vocab,
        "n_ctx": task.seq_len,
    }
    return build_model(ModelConfig(**(fields | changes)))


def test_too_long_sequences_are_refused_with_the_range():
    model = model_for(TASK, n_ctx=TASK.seq_len - 1)
    with pytest.raises(
        MesaInterpError, match=rf"n_ctx={TASK.seq_len - 1} \(allowed: 1..{TASK.seq_len - 1}\)"
    ):
        evaluate(model, TASK, 4)


def test_tokens_outside_the_vocabulary_are_refused():
    model = model_for(TASK)
    bad = torch.full((2, 4), TASK.d_vocab, dtype=torch.long)
    with pytest.raises(MesaInterpError, match=rf"allowed: 0..{TASK.d_vocab - 1}"):
        validate_inputs(model, bad)
    with pytest.raises(MesaInterpError, match="outside"):
        validate_inputs(model, -bad)
    with pytest.raises(MesaInterpError, match="d_model=16"):
        validate_inputs(model, torch.zeros(2, 4, 3))


def test_vocabulary_mismatch_is_refused_before_a_forward():
    model = model_for(TASK, d_vocab=TASK.d_vocab - 1)
    with pytest.raises(MesaInterpError, match="outputs"):
        evaluate(model, TASK, 4)


def test_bad_n_is_refused():
    with pytest.raises(MesaInterpError, match="positive"):
        evaluate(model_for(TASK), TASK, 0)


def test_seed_streams_are_disjoint():
    assert train_seed(2**28 - 1, 2**32 - 1) < HELD_OUT_SEED_BASE <= held_out_seed(0)


def test_metrics_match_a_per_example_oracle():
    model = model_for(TASK)
    result = evaluate(model, TASK, 37, seed=held_out_seed(5), batch_size=10)
    batch = TASK.sample(37, seed=held_out_seed(5))
    with torch.no_grad():
        logits = model(batch.inputs)
    exact, token = [], []
    for b in range(37):
        pos = [p for p in range(batch.seq_len) if batch.targets[b, p] != IGNORE_INDEX]
        right = [int(logits[b, p].argmax()) == int(batch.targets[b, p]) for p in pos]
        exact.append(all(right))
        token.append(sum(right) / len(right))
    assert result.metrics["exact_path"] == pytest.approx(sum(exact) / 37)
    assert result.metrics["token_acc"] == pytest.approx(sum(token) / 37)
    assert result.metrics["loss"] == pytest.approx(float(batch_loss(logits, batch)), rel=1e-4)
    lo, hi = result.metrics["exact_path_ci_low"], result.metrics["exact_path_ci_high"]
    assert lo <= result.metrics["exact_path"] <= hi


def test_regression_loss_is_mse_on_supervised_positions():
    from mesainterp.tasks import TaskBatch

    targets = torch.tensor([[float("nan"), 1.0, 2.0]])
    batch = TaskBatch(inputs=torch.zeros(1, 3, 4), targets=targets, prompt_len=1, labels={})
    outputs = torch.tensor([[[5.0], [0.0], [0.0]]])
    assert float(batch_loss(outputs, batch)) == pytest.approx((1.0 + 4.0) / 2)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(1000, 1000)[1] == 1.0
    assert wilson_interval(1000, 1000)[0] == pytest.approx(0.99617, abs=1e-4)
