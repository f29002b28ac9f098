"""Every shipped model meets its bar on 1000 fresh held-out samples.

The seed differs from the one used during training (which chose the saved
checkpoint), so selection on the evaluation set cannot inflate the number.
"""

from __future__ import annotations

import pytest
import torch

from mesainterp import zoo
from mesainterp.tasks import IGNORE_INDEX
from mesainterp.training import TrainConfig, evaluate, held_out_seed
from mesainterp.training.evaluation import evaluate_batch
from mesainterp.training.loop import training_set

pytestmark = pytest.mark.integration

# name -> (metric, lower bound on its held-out mean)
BARS = {
    "tree-path": ("exact_path", 0.98),
    # Paths up to 8 levels deep with 6 layers; the bar for shipping it.
    "tree-path-brinkmann": ("exact_path", 0.95),
    "maze": ("exact_path", 0.95),
    "maze-4x4": ("exact_path", 0.95),
    "graph-search": ("exact_path", 0.95),
}
# Bars the shipped checkpoint is known to miss, with the measured value. The bar is
# kept, and the test is a strict xfail: it fails loudly once a retrained model passes.
KNOWN_SHORT: dict[str, str] = {}
TEST_SEED = held_out_seed(7_777)
SHIPPED = zoo.list_models()


def test_the_main_demo_model_is_shipped():
    assert "tree-path" in SHIPPED


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_SHORT[n], strict=True))
        if n in KNOWN_SHORT
        else n
        for n in SHIPPED
        if n in BARS
    ],
)
def test_held_out_accuracy_meets_the_bar(name):
    checkpoint = zoo.load(name)
    task = zoo.load_task(name)
    metric, bar = BARS[name]
    result = evaluate(checkpoint.model, task, 1000, seed=TEST_SEED)
    assert result.n == 1000
    assert result.metrics[metric] >= bar, result.metrics


def test_tree_path_covers_deep_goals():
    task = zoo.load_task("tree-path")
    assert task.max_depth >= 4
    checkpoint = zoo.load("tree-path")
    batch = task.sample(1000, seed=TEST_SEED)
    with torch.no_grad():
        scores = task.score(checkpoint.model(batch.inputs), batch)
    depth = batch.labels["depth"]
    for d in range(1, task.max_depth + 1):
        at_depth = scores["exact_path"][depth == d]
        assert at_depth.numel() > 50
        assert float(at_depth.float().mean()) >= 0.95, (d, float(at_depth.float().mean()))


def test_graph_search_solves_every_lookahead():
    """The hardest instances (the longest start -> goal distance) meet the bar too."""
    task = zoo.load_task("graph-search")
    checkpoint = zoo.load("graph-search")
    batch = task.sample(1000, seed=TEST_SEED)
    with torch.no_grad():
        scores = task.score(checkpoint.model(batch.inputs), batch)
    lookahead = torch.as_tensor(batch.labels["lookahead"])
    for k in range(1, task.max_lookahead + 1):
        at_k = scores["exact_path"][lookahead == k]
        assert at_k.numel() > 50
        assert float(at_k.float().mean()) >= 0.95, (k, float(at_k.float().mean()))


@pytest.mark.parametrize("name", [n for n in SHIPPED if n in BARS])
def test_teacher_forced_exactness_equals_greedy_decoding(name):
    """Slow oracle: decode one token at a time from the prompt and compare."""
    checkpoint = zoo.load(name)
    task = zoo.load_task(name)
    batch = task.sample(40, seed=TEST_SEED + 1)
    with torch.no_grad():
        fast = task.score(checkpoint.model(batch.inputs), batch)["exact_path"]
        for b in range(batch.batch_size):
            target = batch.targets[b]
            supervised = [p for p in range(batch.seq_len) if target[p] != IGNORE_INDEX]
            # Decoding starts where the first scored prediction is made: after the
            # prompt, or after the root where the root is given.
            tokens = batch.inputs[b, : supervised[0] + 1].tolist()
            ok = True
            for p in supervised:
                nxt = int(checkpoint.model(torch.tensor([tokens]))[0, -1].argmax())
                ok &= nxt == int(target[p])
                tokens.append(nxt)
            assert ok == bool(fast[b]), b


@pytest.mark.skipif("icl-regression" not in SHIPPED, reason="icl-regression not shipped")
def test_icl_regression_beats_one_step_of_gradient_descent():
    """Query MSE at most that of one GD step at the best rate for these very samples."""
    checkpoint = zoo.load("icl-regression")
    task = zoo.load_task("icl-regression")
    batch = task.sample(1000, seed=TEST_SEED)
    result = evaluate(checkpoint.model, task, 1000, seed=TEST_SEED)
    truth = batch.labels["ys"][:, -1].double()
    lr = task.best_gd_lr(batch)
    gd_mse = float(((task.gd_predictions(batch, lr).double() - truth) ** 2).mean())
    assert result.metrics["mse"] <= gd_mse, (result.metrics["mse"], gd_mse)


MEMORIZERS = [n for n in SHIPPED if n.endswith("-memorizer")]


@pytest.mark.parametrize("name", MEMORIZERS)
def test_memorizer_solves_its_training_set_and_not_fresh_samples(name):
    """The control for search claims: same model and task as the zoo model, a
    fixed training set memorised, and poor on fresh held-out samples."""
    checkpoint = zoo.load(name)
    config = TrainConfig.from_dict(checkpoint.metadata["train_config"])
    assert config.train_set_size is not None
    base = zoo.load(name.removesuffix("-memorizer"))
    assert checkpoint.config == base.config
    task = zoo.load_task(name)
    assert task.config_dict() == zoo.load_task(name.removesuffix("-memorizer")).config_dict()
    # The training set is regenerated from the recorded config, not stored.
    fixed = training_set(config, config.build_task())
    assert fixed is not None
    seen = evaluate_batch(checkpoint.model, config.build_task(), fixed, seed=0)
    fresh = evaluate(checkpoint.model, task, 1000, seed=TEST_SEED)
    recorded = checkpoint.metadata["train_set"]["metrics"]
    if "exact_path" in seen.metrics:
        assert seen.metrics["exact_path"] == pytest.approx(recorded["exact_path"])
        assert seen.metrics["exact_path"] >= 0.97, seen.metrics
        assert fresh.metrics["exact_path"] <= 0.5, fresh.metrics
    else:
        assert seen.metrics["mse"] == pytest.approx(recorded["mse"], rel=1e-4)
        # Memorised: far below the held-out error, which one GD step beats.
        batch = task.sample(1000, seed=TEST_SEED)
        truth = batch.labels["ys"][:, -1].double()
        gd = task.gd_predictions(batch, task.best_gd_lr(batch)).double()
        gd_mse = float(((gd - truth) ** 2).mean())
        assert seen.metrics["mse"] <= 0.1 * fresh.metrics["mse"], (seen.metrics, fresh.metrics)
        assert fresh.metrics["mse"] > gd_mse, (fresh.metrics["mse"], gd_mse)
