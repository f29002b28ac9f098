import pytest

from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig

BASE = dict(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=13, n_ctx=16)


def test_valid_config_round_trips_through_dict():
    config = ModelConfig(**BASE)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_config_is_frozen():
    config = ModelConfig(**BASE)
    with pytest.raises(AttributeError):
        config.n_layers = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n_layers": 0}, "n_layers"),
        ({"d_model": -1}, "d_model"),
        ({"n_heads": 1.5}, "n_heads"),
        ({"act_fn": "tanh"}, "act_fn"),
        ({"normalization_type": "batchnorm"}, "normalization_type"),
        ({"positional_embedding_type": "alibi"}, "positional_embedding_type"),
        ({"d_mlp": None}, "d_mlp"),
        ({"seed": -3}, "seed"),
        ({"n_layers": True}, "n_layers"),
    ],
)
def test_bad_field_is_named(change, field):
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**(BASE | change))


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match="allowed: 'gelu'"):
        ModelConfig(**(BASE | {"act_fn": "tanh"}))


def test_from_dict_names_unknown_and_missing_fields():
    with pytest.raises(ConfigError, match=r"model\.n_layer\b.*unknown field"):
        ModelConfig.from_dict({**BASE, "n_layer": 2})
    missing = dict(BASE)
    del missing["d_head"]
    with pytest.raises(ConfigError, match=r"model\.d_head: missing"):
        ModelConfig.from_dict(missing)
    with pytest.raises(ConfigError, match=r"model\.n_ctx"):
        ModelConfig.from_dict(BASE | {"n_ctx": "16"})


def test_attn_only_needs_no_mlp():
    config = ModelConfig(**(BASE | {"attn_only": True, "d_mlp": None}))
    assert config.attn_only
    with pytest.raises(ConfigError, match="d_mlp"):
        ModelConfig(**(BASE | {"attn_only": True}))
