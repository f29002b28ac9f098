"""A bridge the user brings (here: HuggingFace GPT-2 with random weights) is accepted."""

import pytest
import torch
import transformers

from mesainterp import fingerprint, model_shape, provenance, random_init_twin
from mesainterp.errors import MesaInterpError
from mesainterp.model import wrap_hf_model


@pytest.fixture(scope="module")
def hf_bridge():
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=16, vocab_size=20)
    torch.manual_seed(0)
    module = transformers.GPT2LMHeadModel(config)
    return wrap_hf_model(module)


def test_shape_of_a_huggingface_bridge(hf_bridge):
    shape = model_shape(hf_bridge)
    assert (shape.n_layers, shape.n_heads, shape.d_head, shape.d_model) == (2, 2, 16, 32)
    assert (shape.n_ctx, shape.d_vocab, shape.d_vocab_out) == (16, 20, 20)


def test_fingerprint_and_provenance_of_a_huggingface_bridge(hf_bridge):
    stamp = provenance(model=hf_bridge, seed=0, config={"k": 1})
    assert stamp["model_fingerprint"] == fingerprint(hf_bridge)
    assert stamp["model_fingerprint"].startswith("sha256:")
    assert stamp["torch_version"] == torch.__version__
    assert stamp["transformer_lens_version"].startswith("4.")


def test_shape_refuses_other_modules():
    with pytest.raises(MesaInterpError, match="TransformerBridge"):
        model_shape(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_random_init_twin_has_same_shape_and_other_weights(tiny_model, tiny_config):
    twin = random_init_twin(tiny_config)
    assert model_shape(twin) == model_shape(tiny_model)
    assert fingerprint(twin) != fingerprint(tiny_model)
    assert fingerprint(random_init_twin(tiny_config)) == fingerprint(twin)
