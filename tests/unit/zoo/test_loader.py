"""`load_model`: one resolver for zoo names, checkpoint and run directories, and
HuggingFace directories; the zoo registry and `load_checkpoint` are the oracles."""

from __future__ import annotations

import json

import pytest
import torch

import mesainterp.model as model_package
from mesainterp import zoo
from mesainterp.errors import MesaInterpError
from mesainterp.model import ModelConfig, build_model, fingerprint, load_checkpoint, save_checkpoint
from mesainterp.zoo import loader
from mesainterp.zoo.loader import (
    LoadedModel,
    UnknownModel,
    load_model,
    model_document,
    resolve_model,
)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_zoo_name_loads_the_shipped_model_and_its_task():
    loaded = load_model("tree-path")
    oracle = zoo.load("tree-path")
    assert loaded.source.kind == "zoo" and loaded.source.ref == loaded.name == "tree-path"
    assert loaded.fingerprint == oracle.fingerprint
    assert _same_weights(loaded.model, oracle.model)
    assert loaded.task is not None
    assert loaded.task.config_dict() == zoo.load_task("tree-path").config_dict()


def test_a_checkpoint_directory_and_its_run_directory_load_the_same_model(
    tiny_checkpoint, tmp_path
):
    oracle = load_checkpoint(tiny_checkpoint)
    direct = load_model(tiny_checkpoint)
    assert direct.source.kind == "checkpoint"
    assert direct.source.ref == str(tiny_checkpoint.resolve())
    assert direct.fingerprint == oracle.fingerprint and direct.config == oracle.config
    assert direct.task is not None and direct.task.name == "tree-path"

    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    for f in tiny_checkpoint.iterdir():
        (run / "checkpoint" / f.name).write_bytes(f.read_bytes())
    via_run = load_model(str(run))
    assert via_run.source.ref == str((run / "checkpoint").resolve()) and via_run.name == "run"
    assert via_run.fingerprint == oracle.fingerprint


def test_a_model_without_a_task_refuses_work_that_needs_one(tmp_path, tiny_config):
    save_checkpoint(build_model(tiny_config), tmp_path / "bare", config=tiny_config)
    loaded = load_model(tmp_path / "bare")
    assert loaded.task is None
    with pytest.raises(MesaInterpError, match="bare: the model records no task to evaluate on"):
        loaded.require_task("evaluate on")


@pytest.mark.parametrize("make", ["missing", "file", "empty-dir"])
def test_an_argument_naming_no_model_is_refused_in_one_line(tmp_path, make):
    target = tmp_path / "x"
    if make == "file":
        target.write_text("{}")
    elif make == "empty-dir":
        target.mkdir()
    with pytest.raises(UnknownModel) as info:
        resolve_model(str(target))
    message = str(info.value)
    assert "\n" not in message and str(target) in message
    assert "not a checkpoint directory" in message or "a file" in message
    if make != "empty-dir":
        assert "unknown zoo model" in message and "'tree-path'" in message


def test_a_zoo_name_is_never_read_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model("tree-path").kind == "zoo"
    with pytest.raises(UnknownModel):
        resolve_model("../tree-path")


def _hf_directory(path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=40, n_positions=16)
    GPT2LMHeadModel(config).save_pretrained(path, safe_serialization=True)
    return path


def test_a_huggingface_directory_is_told_apart_from_a_checkpoint(tmp_path, tiny_checkpoint):
    hf = _hf_directory(tmp_path / "hf")
    assert json.loads((hf / "config.json").read_text())["model_type"] == "gpt2"
    assert resolve_model(hf).kind == "hf"
    assert resolve_model(tiny_checkpoint).kind == "checkpoint"


def test_the_document_is_read_without_weights(tmp_path, tiny_checkpoint):
    shipped = model_document("tree-path")
    assert shipped is not None and shipped["task"]["name"] == "tree-path"
    assert shipped["fingerprint"] == zoo.describe("tree-path").fingerprint
    document = model_document(tiny_checkpoint)
    assert (
        document is not None
        and document["fingerprint"] == load_checkpoint(tiny_checkpoint).fingerprint
    )
    # Weights that do not load are not read here.
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    (copy / "model.safetensors").write_bytes(b"broken")
    assert model_document(copy) == document
    assert model_document(_hf_directory(tmp_path / "hf")) is None


def test_without_the_huggingface_loader_the_refusal_names_it(tmp_path, monkeypatch):
    hf = _hf_directory(tmp_path / "hf")
    monkeypatch.setattr(loader, "HF_LOADER", "mesainterp.model:no_such_loader")
    with pytest.raises(MesaInterpError, match="no_such_loader is missing"):
        load_model(hf)


def test_the_huggingface_branch_wraps_what_the_loader_returns(tmp_path, monkeypatch):
    """The branch end to end with a stand-in for `load_hf_dir`: the real HF model
    wrapped by TransformerLens's own builder."""
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformers import GPT2LMHeadModel

    hf = _hf_directory(tmp_path / "my-gpt2")
    seen = []

    def stand_in(path):
        seen.append(path)
        module = GPT2LMHeadModel.from_pretrained(path)
        return build_bridge_from_module(module, "GPT2LMHeadModel", hf_config=module.config)

    monkeypatch.setattr(loader, "_hf_loader", lambda: stand_in)
    loaded = load_model(hf)
    assert seen == [str(hf.resolve())]
    assert loaded.source.kind == "hf" and loaded.name == "my-gpt2"
    assert loaded.task is None and loaded.checkpoint is None and loaded.config is None
    assert loaded.fingerprint == fingerprint(loaded.model)
    tokens = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert loaded.model(tokens).shape == (1, 3, 40)
    monkeypatch.setattr(loader, "_hf_loader", lambda: lambda path: object())
    with pytest.raises(MesaInterpError, match="returned no TransformerBridge"):
        load_model(hf)


@pytest.mark.skipif(
    not hasattr(model_package, "load_hf_dir"),
    reason="mesainterp.model.load_hf_dir is added by a separate change",
)
def test_a_huggingface_directory_loads_offline(tmp_path):
    hf = _hf_directory(tmp_path / "hf")
    loaded = load_model(hf)
    assert isinstance(loaded, LoadedModel) and loaded.source.kind == "hf"
    assert loaded.task is None and loaded.checkpoint is None and loaded.config is None
    assert loaded.fingerprint == fingerprint(loaded.model) and loaded.name == "hf"


def test_the_checkpoint_kind_keeps_its_precise_errors(tmp_path, tiny_config):
    path = tmp_path / "m"
    save_checkpoint(build_model(tiny_config), path, config=ModelConfig(**tiny_config.to_dict()))
    (path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(MesaInterpError, match=r"model\.safetensors"):
        load_model(path)
