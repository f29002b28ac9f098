"""Random-init twins of any bridge: same architecture, other weights, reproducible by seed."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import MesaInterpError
from mesainterp.model import fingerprint, model_shape, random_init_twin
from tests.families import VOCAB, family_bridge


@pytest.mark.parametrize("family", ["llama", "neox", "native-llama"])
def test_twin_of_a_bridge(family: str) -> None:
    model = family_bridge(family, seed=3)
    twin = random_init_twin(model, seed=11)
    assert model_shape(twin) == model_shape(model)
    assert type(twin.original_model) is type(model.original_model)
    assert fingerprint(twin) != fingerprint(model)
    assert fingerprint(random_init_twin(model, seed=11)) == fingerprint(twin)
    assert fingerprint(random_init_twin(model, seed=12)) != fingerprint(twin)
    assert not twin.training
    x = torch.randint(0, VOCAB, (1, 4))
    with torch.no_grad():
        assert twin(x).shape == model(x).shape


def test_twin_uses_the_architecture_s_own_init() -> None:
    """HF Llama draws linear weights from N(0, initializer_range): the twin's spread matches."""
    model = family_bridge("llama")
    twin = random_init_twin(model, seed=5)
    std = model.original_model.config.initializer_range
    weight = twin.original_model.model.layers[0].mlp.up_proj.weight
    assert abs(float(weight.detach().std()) - std) < 0.25 * std


def test_default_seed_differs_from_the_model_s_and_rng_is_untouched() -> None:
    model = family_bridge("native-gpt2", seed=0)
    state = torch.random.get_rng_state()
    twin = random_init_twin(model)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert fingerprint(twin) != fingerprint(model)


def test_twin_refuses_other_objects() -> None:
    with pytest.raises(MesaInterpError, match="expected a ModelConfig or a TransformerBridge"):
        random_init_twin(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
