"""Training resumes bit for bit, and refuses to resume a different run."""

from __future__ import annotations

import json

import pytest
import torch

from mesainterp.errors import CheckpointError
from mesainterp.model import load_checkpoint
from mesainterp.training import CurriculumStage, TrainConfig, train
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
        "curriculum": [{"until_step": 2, "task_params": {"max_depth": 2}}],
    }
    return TrainConfig.from_dict(data | changes)


def _weights(path) -> dict[str, torch.Tensor]:
    return dict(load_checkpoint(path / CHECKPOINT_DIR).model.state_dict())


def test_resume_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    config = tiny_config()
    full = train(config, tmp_path / "full", progress=False, command=["test"])
    half = train(config, tmp_path / "split", progress=False, stop_at=3, command=["test"])
    assert half.step == 3
    resumed = train(config, tmp_path / "split", resume=True, progress=False, command=["test"])
    assert resumed.step == full.step == 6
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert full.fingerprint == resumed.fingerprint
    log_full = [json.loads(x) for x in (tmp_path / "full" / EVAL_LOG).read_text().splitlines()]
    log_split = [json.loads(x) for x in (tmp_path / "split" / EVAL_LOG).read_text().splitlines()]
    assert [r["step"] for r in log_full] == [r["step"] for r in log_split] == [2, 4, 6]
    assert [r["exact_path"] for r in log_full] == [r["exact_path"] for r in log_split]


def test_training_changes_the_weights_and_records_metadata(tmp_path):
    config = tiny_config(steps=2, curriculum=[])
    result = train(config, tmp_path / "run", progress=False, command=["mesainterp", "train", "x"])
    checkpoint = load_checkpoint(tmp_path / "run" / CHECKPOINT_DIR)
    from mesainterp.model import build_model

    initial = build_model(config.model).state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in checkpoint.model.state_dict().items())
    meta = checkpoint.metadata
    assert meta["training_command"] == ["mesainterp", "train", "x"]
    assert meta["held_out"]["metrics"]["exact_path"] == result.eval.metrics["exact_path"]
    assert meta["n_params"] == sum(p.numel() for p in checkpoint.model.parameters())
    assert checkpoint.task == config.build_task().config_dict()


def test_refuses_to_overwrite_or_resume_a_different_run(tmp_path):
    config = tiny_config(steps=2, curriculum=[])
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="already saved"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="lr"):
        train(config.replace(lr=0.5), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(config, tmp_path / "empty", resume=True, progress=False)


def test_curriculum_stage_must_fit_the_model():
    with pytest.raises(Exception, match="n_ctx"):
        TrainConfig.from_dict(
            {
                "task": "tree-path",
                "task_params": {"n_nodes": 5, "max_depth": 2},
                "model": {"n_layers": 1, "d_model": 16, "n_heads": 1, "d_head": 16, "d_mlp": 32},
                "steps": 4,
                "curriculum": [{"until_step": 2, "task_params": {"max_depth": 4}}],
            }
        ).stage_tasks()
    assert CurriculumStage(until_step=3).task_params == {}


def test_regression_task_trains_on_mse_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(
        {
            "task": "icl-regression",
            "task_params": {"d_x": 3, "n_context": 4, "d_model": 8},
            "model": {"n_layers": 1, "d_model": 8, "n_heads": 2, "d_head": 4, "d_mlp": 16},
            "steps": 4,
            "batch_size": 8,
            "eval_every": 2,
            "eval_n": 16,
            "checkpoint_every": 2,
        }
    )
    assert config.model.d_vocab_out == 1
    full = train(config, tmp_path / "full", progress=False)
    assert set(full.eval.metrics) == {"mse", "loss"}
    assert full.eval.metrics["mse"] == pytest.approx(full.eval.metrics["loss"], rel=1e-5)
    train(config, tmp_path / "split", progress=False, stop_at=1)
    resumed = train(config, tmp_path / "split", resume=True, progress=False)
    assert resumed.fingerprint == full.fingerprint


def test_held_out_task_parameters_are_evaluated_and_recorded(tmp_path):
    config = tiny_config(
        steps=2,
        curriculum=[],
        task_params={"n_nodes": 5, "max_depth": 3, "split": "train"},
        eval_task_params={"split": "test"},
    )
    assert config.build_task().config_dict()["split"] == "train"
    result = train(config, tmp_path / "run", progress=False)
    assert result.eval.task["split"] == "test"
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_DIR).task["split"] == "test"
    assert TrainConfig.from_dict(config.to_dict()) == config
