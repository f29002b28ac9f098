"""TrainConfig validation and round trips."""

from __future__ import annotations

import pytest

from mesainterp.errors import ConfigError
from mesainterp.training import PRESETS, TrainConfig, load_train_config, preset

BASE = {
    "task": "tree-path",
    "task_params": {"n_nodes": 5, "max_depth": 2},
    "model": {"n_layers": 1, "d_model": 16, "n_heads": 1, "d_head": 16, "d_mlp": 32},
    "steps": 4,
}


def test_model_table_is_completed_from_the_task():
    config = TrainConfig.from_dict(BASE)
    task = config.build_task()
    assert config.model.d_vocab == task.d_vocab
    assert config.model.n_ctx == task.seq_len


def test_round_trip_through_dict_and_files(tmp_path):
    config = TrainConfig.from_dict(
        BASE
        | {"curriculum": [{"until_step": 2, "task_params": {"max_depth": 1, "max_children": 4}}]}
    )
    assert TrainConfig.from_dict(config.to_dict()) == config
    toml = tmp_path / "run.toml"
    toml.write_text(
        'task = "tree-path"\nsteps = 4\n[task_params]\nn_nodes = 5\nmax_depth = 2\n'
        "[model]\nn_layers = 1\nd_model = 16\nn_heads = 1\nd_head = 16\nd_mlp = 32\n"
        "[[curriculum]]\nuntil_step = 2\ntask_params = { max_depth = 1, max_children = 4 }\n"
    )
    assert load_train_config(toml) == config


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"bogus": 1}, "bogus"),
        ({"curriculum": [{"until_step": 9}]}, "curriculum[0].until_step"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_fields_are_named(change, field):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(BASE | change)
    assert info.value.field == field


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigError, match="tree-path"):
        TrainConfig.from_dict(BASE | {"task": "nope"})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    config = preset(name)
    assert config.task == PRESETS[name]["task"]
    assert name.startswith(config.task)
    config.stage_tasks()
