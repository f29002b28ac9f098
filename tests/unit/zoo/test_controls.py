"""Control twins: one seeding rule for the trained, planted and random-init roles."""

from __future__ import annotations

import pytest

from mesainterp import zoo
from mesainterp.errors import ConfigError
from mesainterp.model import build_model, fingerprint, model_shape, random_init_twin
from mesainterp.zoo.controls import (
    control_seed,
    control_twin,
    loaded_control_twin,
    random_init_model,
)
from mesainterp.zoo.loader import LoadedModel, ModelSource


@pytest.mark.parametrize(("role", "offset"), [("trained", 1), ("planted", 1), ("random-init", 2)])
def test_the_twin_is_seeded_one_past_the_model_under_test(tiny_config, role, offset):
    assert control_seed(tiny_config, role=role) == tiny_config.seed + offset
    twin = control_twin(tiny_config, role=role)
    oracle = random_init_twin(tiny_config, seed=tiny_config.seed + offset)
    assert fingerprint(twin) == fingerprint(oracle)


def test_no_twin_is_the_model_it_controls(tiny_config):
    trained_start = build_model(tiny_config)  # the run's own starting point
    random_init = random_init_model(tiny_config)
    prints = {
        "start": fingerprint(trained_start),
        "trained twin": fingerprint(control_twin(tiny_config)),
        "random-init model": fingerprint(random_init),
        "random-init twin": fingerprint(control_twin(tiny_config, role="random-init")),
    }
    # The random-init model is the trained model's twin; its own twin must differ from it.
    assert prints["random-init model"] == prints["trained twin"]
    assert prints["start"] != prints["trained twin"]
    assert prints["random-init twin"] not in (prints["random-init model"], prints["start"])


def test_a_loaded_zoo_model_gets_the_same_twin_as_the_zoo_gives():
    loaded = zoo.load_model("tree-path")
    assert fingerprint(loaded_control_twin(loaded)) == fingerprint(zoo.random_init("tree-path"))


def test_a_model_without_a_checkpoint_gets_a_twin_from_its_own_architecture(tiny_model):
    """An HF-directory model has no ModelConfig; its twin is rebuilt from the bridge itself."""
    loaded = LoadedModel(
        model=tiny_model, task=None, checkpoint=None, fingerprint="x", name="hf-model",
        source=ModelSource(kind="hf", ref="/x", name="hf-model"),
    )  # fmt: skip
    twin = loaded_control_twin(loaded)
    assert model_shape(twin) == model_shape(tiny_model)
    assert fingerprint(twin) != fingerprint(tiny_model)
    again = loaded_control_twin(loaded)
    assert fingerprint(again) == fingerprint(twin)
    other = loaded_control_twin(loaded, role="random-init")
    assert fingerprint(other) != fingerprint(twin)
    with pytest.raises(ConfigError, match="role"):
        loaded_control_twin(loaded, role="memorizer")  # type: ignore[arg-type]


def test_an_unknown_role_is_refused(tiny_config):
    with pytest.raises(ConfigError, match=r"role.*'trained', 'planted', 'random-init'"):
        control_seed(tiny_config, role="memorizer")
