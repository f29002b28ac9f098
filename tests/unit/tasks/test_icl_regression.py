"""ICL regression: embeddings layout, labels against numpy lstsq and a plain GD loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.tasks import ICLRegressionTask, best_gd_lr, gd_predictions

TASK = ICLRegressionTask(d_x=4, n_context=8, d_model=16, gd_lr=0.7)


def test_layout():
    b = TASK.sample(32, seed=0)
    assert TASK.seq_len == TASK.prompt_len == 9 and TASK.d_vocab_out == 1
    assert TASK.input_width == TASK.d_vocab == 16
    assert b.inputs.shape == (32, 9, 16) and b.inputs.dtype == torch.float32
    assert b.targets.shape == (32, 9) and b.targets.dtype == torch.float32
    assert b.answer_mask.sum(1).eq(1).all() and b.answer_mask[:, -1].all()
    xs, ys = b.labels["xs"], b.labels["ys"]
    assert torch.equal(b.inputs[:, :, :4], xs)
    assert torch.equal(b.inputs[:, :-1, 4], ys[:, :-1])
    assert (b.inputs[:, -1, 4] == 0).all() and (b.inputs[:, -1, 5] == 1).all()
    assert (b.inputs[:, :-1, 5] == 0).all() and (b.inputs[:, :, 6:] == 0).all()
    assert torch.equal(b.targets[:, -1], ys[:, -1])
    # Noise-free: y = w.x exactly; uniform inputs stay in [-1, 1].
    assert torch.allclose(torch.einsum("bnd,bd->bn", xs, b.labels["w"]), ys, atol=1e-5)
    assert xs.abs().max() <= 1


def test_determinism():
    a, b = TASK.sample(8, seed=1), TASK.sample(8, seed=1)
    assert torch.equal(a.inputs, b.inputs) and torch.allclose(
        a.targets, b.targets, equal_nan=True, rtol=0, atol=0
    )
    assert not torch.equal(a.inputs, TASK.sample(8, seed=2).inputs)


def test_noise_and_normal_inputs():
    task = ICLRegressionTask(d_x=3, n_context=50, d_model=8, x_dist="normal", noise_std=0.5)
    b = task.sample(200, seed=3)
    resid = b.labels["ys"] - torch.einsum("bnd,bd->bn", b.labels["xs"], b.labels["w"])
    assert resid.std().item() == pytest.approx(0.5, rel=0.1)
    assert b.labels["xs"].abs().max() > 1


@pytest.mark.parametrize("task", [TASK, ICLRegressionTask(d_x=6, n_context=4, d_model=8)])
def test_labels_against_numpy(task):
    b = task.sample(20, seed=4)
    lr = task.effective_gd_lr
    for i in range(20):
        x = b.labels["xs"][i].double().numpy()
        y = b.labels["ys"][i].double().numpy()
        ctx, cy, xq = x[:-1], y[:-1], x[-1]
        w_ls = np.linalg.lstsq(ctx, cy, rcond=None)[0]  # minimum norm when underdetermined
        assert b.labels["lstsq_pred"][i].item() == pytest.approx(xq @ w_ls, abs=1e-4)
        w = np.zeros(task.d_x)
        grad = sum((w @ ctx[k] - cy[k]) * ctx[k] for k in range(len(cy))) / len(cy)
        w = w - lr * grad
        assert b.labels["gd_pred"][i].item() == pytest.approx(xq @ w, abs=1e-4)


def test_gd_steps_and_best_lr_against_brute_force():
    b = TASK.sample(64, seed=5)
    xs, ys = b.labels["xs"], b.labels["ys"]
    # Three steps equal a hand-written loop.
    x, y = xs.double().numpy(), ys.double().numpy()
    w = np.zeros((64, 4))
    for _ in range(3):
        resid = np.einsum("bnd,bd->bn", x[:, :-1], w) - y[:, :-1]
        w = w - 0.4 * np.einsum("bn,bnd->bd", resid, x[:, :-1]) / 8
    expect = np.einsum("bd,bd->b", w, x[:, -1])
    assert np.allclose(gd_predictions(xs, ys, 0.4, steps=3).numpy(), expect, atol=1e-5)
    grid = np.linspace(0, 5, 5001)[:, None, None]  # every rate at once, plain numpy
    for steps in (1, 2):
        wg = np.zeros((len(grid), 64, 4))
        for _ in range(steps):
            resid = np.einsum("bnd,gbd->gbn", x[:, :-1], wg) - y[:, :-1]
            wg = wg - grid * np.einsum("gbn,bnd->gbd", resid, x[:, :-1]) / 8
        losses = ((np.einsum("gbd,bd->gb", wg, x[:, -1]) - y[:, -1]) ** 2).sum(1)
        brute = grid[int(np.argmin(losses)), 0, 0]
        assert best_gd_lr(xs, ys, steps=steps) == pytest.approx(brute, abs=2e-3)
    # Matching a model's predictions: recovers the rate that produced them.
    fake = gd_predictions(xs, ys, 1.3)
    assert TASK.best_gd_lr(b, predictions=fake) == pytest.approx(1.3, abs=1e-4)


def test_default_lr_is_the_best_one_step_rate():
    task = ICLRegressionTask(d_x=4, n_context=8, d_model=16)
    b = task.sample(4000, seed=6)
    assert task.effective_gd_lr == pytest.approx(task.best_gd_lr(b), rel=0.05)


def test_weight_pairs():
    pair = TASK.counterfactual_pairs(16, seed=7, family="weights")
    c, r = pair.clean, pair.corrupted
    assert torch.equal(c.labels["xs"], r.labels["xs"])
    assert (c.labels["w"] != r.labels["w"]).all()
    assert (c.labels["ys"] != r.labels["ys"]).all()
    assert (pair.answer_pos == TASK.query_pos).all() and (pair.clean_answer == -1).all()


def test_query_pairs():
    pair = TASK.counterfactual_pairs(16, seed=8, family="query")
    c, r = pair.clean, pair.corrupted
    assert torch.equal(c.inputs[:, :-1], r.inputs[:, :-1])
    assert torch.equal(c.labels["w"], r.labels["w"])
    assert (c.inputs[:, -1, :4] != r.inputs[:, -1, :4]).all()


def test_metric_and_score():
    pair = TASK.counterfactual_pairs(10, seed=9)
    metric = TASK.default_metric(pair)
    perfect = torch.nan_to_num(pair.clean.targets).unsqueeze(-1)
    assert (metric(perfect, pair.clean) == 0).all()
    other = torch.nan_to_num(pair.corrupted.targets).unsqueeze(-1)
    assert (metric(other, pair.corrupted) < 0).all()
    shifted = perfect + 0.5
    assert torch.allclose(metric(shifted, pair.clean), torch.full((10,), -0.25))
    s = TASK.score(shifted, pair.clean)["mse"]
    assert torch.allclose(s, torch.full((10,), 0.25))
    assert torch.equal(TASK.score(perfect, pair.clean)["mse"], torch.zeros(10))
    assert not math.isnan(TASK.score(torch.randn(10, 9, 1), pair.clean)["mse"].sum().item())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"d_model": 5}, "d_model"),
        ({"d_x": 0}, "d_x"),
        ({"n_context": 0}, "n_context"),
        ({"x_dist": "cauchy"}, "x_dist"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"gd_lr": -0.1}, "gd_lr"),
    ],
)
def test_bad_params(params, field):
    with pytest.raises(ConfigError, match=field):
        ICLRegressionTask(**{"d_x": 4, "d_model": 16, **params})
