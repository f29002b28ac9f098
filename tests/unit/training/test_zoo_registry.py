"""The zoo registry: listing, loading by name, unknown names, the random-init control."""

from __future__ import annotations

import pytest
import torch

from mesainterp import zoo
from mesainterp.errors import MesaInterpError
from mesainterp.model import fingerprint

SHIPPED = zoo.list_models()
needs_models = pytest.mark.skipif(not SHIPPED, reason="no zoo models shipped")


def test_list_models_is_sorted_names():
    assert sorted(SHIPPED) == SHIPPED
    assert all(isinstance(name, str) and name for name in SHIPPED)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(MesaInterpError, match="unknown zoo model 'nope'") as info:
        zoo.load("nope")
    for name in SHIPPED:
        assert repr(name) in str(info.value)
    with pytest.raises(MesaInterpError, match="unknown zoo model"):
        zoo.random_init("nope")


@needs_models
@pytest.mark.parametrize("name", SHIPPED)
def test_load_verifies_and_binds_the_task(name):
    checkpoint = zoo.load(name)
    assert checkpoint.fingerprint == fingerprint(checkpoint.model)
    task = zoo.load_task(name)
    # Parameters added to a task after training keep their defaults.
    built = task.config_dict()
    assert {k: built[k] for k in checkpoint.task} == checkpoint.task
    assert checkpoint.config.n_ctx >= task.seq_len
    entry = zoo.describe(name)
    assert entry.fingerprint == checkpoint.fingerprint
    assert entry.n_params == sum(p.numel() for p in checkpoint.model.parameters())
    assert entry.size_bytes < 8_000_000
    assert entry.training_command[:3] == ["mesainterp", "--no-progress", "train"]


@needs_models
@pytest.mark.parametrize("name", SHIPPED)
def test_random_init_has_the_same_shape_and_different_weights(name):
    trained = zoo.load(name).model.state_dict()
    control = zoo.random_init(name).state_dict()
    assert control.keys() == trained.keys()
    for key in trained:
        assert control[key].shape == trained[key].shape
    assert any(not torch.equal(control[k], trained[k]) for k in trained if control[k].numel() > 1)
    # Seeded: the same control every time.
    again = zoo.random_init(name).state_dict()
    assert all(torch.equal(again[k], control[k]) for k in control)


def test_checkpoints_are_package_resources():
    from importlib import resources

    root = resources.files("mesainterp.zoo").joinpath("checkpoints")
    for name in SHIPPED:
        assert root.joinpath(name).joinpath("model.safetensors").is_file()
