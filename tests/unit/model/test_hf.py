"""HuggingFace models wrap and load offline, and pickled weights are refused by name."""

from __future__ import annotations

import socket

import pytest
import torch
import transformers

from mesainterp.errors import MesaInterpError
from mesainterp.model import load_hf_dir, model_shape, wrap_hf_model
from tests.families import VOCAB, hf_module


@pytest.fixture
def offline(monkeypatch):
    """The hub is unreachable: offline flags set, and any socket connection refused."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _tokens(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_wrapped_model_gives_the_module_s_logits(offline, family: str) -> None:
    module = hf_module(family)
    x = _tokens()
    with torch.no_grad():
        expected = module(x).logits
        bridge = wrap_hf_model(module)
        got = bridge(x)
    assert (got - expected).abs().max() <= 1e-5
    assert not bridge.training
    assert model_shape(bridge).source == "hf"
    assert bridge.tokenizer is not None and len(bridge.tokenizer) == VOCAB


def test_saved_directory_round_trips(offline, tmp_path) -> None:
    module = hf_module("llama", seed=4)
    x = _tokens(1)
    with torch.no_grad():
        expected = module(x).logits
    module.save_pretrained(tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".json", ".safetensors"]
    bridge = load_hf_dir(tmp_path)
    with torch.no_grad():
        assert (bridge(x) - expected).abs().max() <= 1e-5
    assert model_shape(bridge).n_kv_heads == 2


def test_pickled_weights_are_refused_by_name(offline, tmp_path) -> None:
    module = hf_module("gpt2")
    module.config.save_pretrained(tmp_path)
    torch.save(module.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(MesaInterpError, match=r"pickles \(pytorch_model\.bin\).*never loads"):
        load_hf_dir(tmp_path)


def test_a_pickle_named_safetensors_is_refused(offline, tmp_path) -> None:
    hf_module("gpt2").config.save_pretrained(tmp_path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    with pytest.raises(MesaInterpError, match=r"pickle named \.safetensors"):
        load_hf_dir(tmp_path)


def test_folders_without_a_model_are_refused(offline, tmp_path) -> None:
    with pytest.raises(MesaInterpError, match=r"no config\.json"):
        load_hf_dir(tmp_path)
    with pytest.raises(MesaInterpError, match="not a directory"):
        load_hf_dir(tmp_path / "missing")
    hf_module("gpt2").config.save_pretrained(tmp_path)
    with pytest.raises(MesaInterpError, match=r"no \*\.safetensors weights"):
        load_hf_dir(tmp_path)


def test_other_modules_and_double_wraps_are_refused(offline) -> None:
    with pytest.raises(
        MesaInterpError, match="expected a transformers PreTrainedModel, got Linear"
    ):
        wrap_hf_model(torch.nn.Linear(2, 2))
    module = hf_module("gpt2")
    wrap_hf_model(module)
    with pytest.raises(MesaInterpError, match="already wrapped"):
        wrap_hf_model(module)


def test_models_that_are_not_causal_lms_are_refused(offline) -> None:
    config = transformers.BertConfig(
        num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32,
        vocab_size=VOCAB,
    )  # fmt: skip
    module = transformers.BertForSequenceClassification(config)
    with pytest.raises(MesaInterpError, match="BertForSequenceClassification is not a causal"):
        wrap_hf_model(module)


def test_a_tokenizer_built_in_memory_is_accepted():
    """TransformerLens re-reads a tokenizer by its `name_or_path`; one built in memory has none."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<bos>", "<unk>"])
    backend.train_from_iterator(["when mary and john went to the store"] * 10, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", unk_token="<unk>"
    )
    assert "name_or_path" not in fast.init_kwargs  # the case that failed
    config = transformers.GPT2Config(
        n_layer=1, n_embd=16, n_head=2, n_positions=8, vocab_size=len(fast)
    )
    bridge = wrap_hf_model(transformers.GPT2LMHeadModel(config), tokenizer=fast)
    assert bridge.tokenizer.convert_tokens_to_ids("<bos>") == fast.convert_tokens_to_ids("<bos>")
