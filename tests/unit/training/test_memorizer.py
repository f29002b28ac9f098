"""Fixed training sets (`train_set_size`): the memorizer controls of the zoo."""

from __future__ import annotations

import json

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.model import build_model, load_checkpoint
from mesainterp.training import PRESETS, TrainConfig, evaluate, preset, train, train_seed
from mesainterp.training.evaluation import evaluate_batch, select_examples
from mesainterp.training.loop import _draw, training_set
from mesainterp.training.state import CHECKPOINT_DIR, EVAL_LOG


def tiny_config(**changes) -> TrainConfig:
    data = {
        "task": "tree-path",
        "task_params": {"n_nodes": 5, "max_depth": 3, "max_children": 2},
        "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
        "steps": 6,
        "batch_size": 8,
        "warmup_steps": 2,
        "eval_every": 2,
        "eval_n": 16,
        "checkpoint_every": 4,
        "train_set_size": 12,
    }
    return TrainConfig.from_dict(data | changes)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64"])
def test_train_set_size_must_be_a_positive_int(bad):
    with pytest.raises(ConfigError, match="train_set_size"):
        tiny_config(train_set_size=bad)


def test_a_fixed_training_set_has_no_curriculum():
    with pytest.raises(ConfigError, match=r"train_set_size.*curriculum"):
        tiny_config(curriculum=[{"until_step": 2, "task_params": {"max_depth": 2}}])


def test_online_sampling_is_the_default():
    config = tiny_config(train_set_size=None)
    assert training_set(config, config.build_task()) is None


def test_batches_come_only_from_the_fixed_set():
    config = tiny_config()
    task = config.build_task()
    fixed = training_set(config, task)
    assert fixed is not None and fixed.batch_size == 12
    # Drawn once from the seed: the same set every time.
    again = training_set(config, task)
    assert torch.equal(fixed.inputs, again.inputs)
    # Slow oracle: every drawn row equals some row of the set, labels included.
    rows = {tuple(r) for r in fixed.inputs.tolist()}
    for step in range(5):
        batch = _draw(config, fixed, step)
        assert batch.batch_size == config.batch_size
        for b in range(batch.batch_size):
            row = tuple(batch.inputs[b].tolist())
            assert row in rows
            i = [tuple(r) for r in fixed.inputs.tolist()].index(row)
            assert torch.equal(batch.targets[b], fixed.targets[i])
            for key, value in batch.labels.items():
                assert torch.equal(value[b], fixed.labels[key][i]), key
    # Pure function of (seed, step).
    assert torch.equal(_draw(config, fixed, 3).inputs, _draw(config, fixed, 3).inputs)


def test_select_examples_keeps_instances_in_step():
    config = tiny_config()
    batch = config.build_task().sample(6, seed=1)
    index = torch.tensor([4, 0, 4])
    picked = select_examples(batch, index)
    assert picked.instances == [batch.instances[4], batch.instances[0], batch.instances[4]]
    assert torch.equal(picked.inputs, batch.inputs[index])


def test_evaluate_batch_matches_evaluate_on_the_same_samples():
    config = tiny_config()
    task = config.build_task()
    model = build_model(config.model)
    seed = train_seed(0, 0)
    direct = evaluate(model, task, 20, seed=seed)
    via_batch = evaluate_batch(model, task, task.sample(20, seed=seed), seed=seed)
    assert direct.metrics == pytest.approx(via_batch.metrics)


def test_run_records_train_set_accuracy_and_resumes_bit_identically(tmp_path):
    torch.set_num_threads(1)
    config = tiny_config()
    full = train(config, tmp_path / "full", progress=False, command=["test"])
    train(config, tmp_path / "split", progress=False, stop_at=3, command=["test"])
    resumed = train(config, tmp_path / "split", resume=True, progress=False, command=["test"])
    assert full.fingerprint == resumed.fingerprint
    log = [json.loads(x) for x in (tmp_path / "full" / EVAL_LOG).read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]
    assert all("train_set_exact_path" in r for r in log)
    meta = load_checkpoint(tmp_path / "full" / CHECKPOINT_DIR).metadata
    assert meta["train_config"]["train_set_size"] == 12
    recorded = meta["train_set"]
    assert recorded["size"] == 12 and recorded["seed"] == train_seed(0, 0)
    # The recorded accuracy is the model's accuracy on that very set.
    model = load_checkpoint(tmp_path / "full" / CHECKPOINT_DIR).model
    fixed = training_set(config, config.build_task())
    rescored = evaluate_batch(model, config.build_task(), fixed, seed=recorded["seed"])
    assert rescored.metrics["exact_path"] == pytest.approx(recorded["metrics"]["exact_path"])
    assert rescored.metrics["loss"] == pytest.approx(recorded["metrics"]["loss"], rel=1e-5)


def test_online_runs_record_no_train_set(tmp_path):
    config = tiny_config(train_set_size=None, steps=2)
    train(config, tmp_path / "run", progress=False, command=["test"])
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_DIR).metadata["train_set"] is None


@pytest.mark.parametrize("name", ["tree-path", "maze", "icl-regression", "graph-search"])
def test_memorizer_presets_share_the_zoo_models_shape_and_task(name):
    base, memorizer = preset(name), preset(f"{name}-memorizer")
    assert memorizer.model == base.model
    assert memorizer.task == base.task
    assert memorizer.task_params == base.task_params
    assert memorizer.eval_task_params == base.eval_task_params
    assert memorizer.train_set_size is not None and 64 <= memorizer.train_set_size <= 512
    assert base.train_set_size is None
    assert PRESETS[f"{name}-memorizer"]["task"] == name


def test_a_run_saved_before_train_set_size_existed_resumes(tmp_path):
    config = tiny_config(train_set_size=None, steps=4)
    train(config, tmp_path / "run", progress=False, stop_at=2, command=["test"])
    state_path = tmp_path / "run" / "train_state.json"
    state = json.loads(state_path.read_text())
    del state["config"]["train_set_size"]
    state_path.write_text(json.dumps(state))
    resumed = train(config, tmp_path / "run", resume=True, progress=False, command=["test"])
    assert resumed.step == 4
