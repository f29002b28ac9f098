import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from mesainterp.errors import CheckpointError
from mesainterp.model import build_model, fingerprint, load_checkpoint, save_checkpoint
from mesainterp.model.checkpoint import CHECKPOINT_SCHEMA_VERSION


def test_round_trip_is_bit_exact(tmp_path, tiny_model, tiny_config, tiny_tokens):
    digest = save_checkpoint(
        tiny_model, tmp_path / "ckpt", config=tiny_config, task={"name": "x"}, metadata={"a": 1}
    )
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.fingerprint == digest == fingerprint(tiny_model)
    assert loaded.config == tiny_config
    assert loaded.task == {"name": "x"}
    assert loaded.metadata == {"a": 1}
    with torch.no_grad():
        assert torch.equal(loaded.model(tiny_tokens), tiny_model(tiny_tokens))


def test_overwrite_replaces_whole_checkpoint(tmp_path, tiny_model, tiny_config):
    save_checkpoint(tiny_model, tmp_path / "c", config=tiny_config)
    other = build_model(tiny_config.__class__(**(tiny_config.to_dict() | {"seed": 9})))
    digest = save_checkpoint(other, tmp_path / "c", config=tiny_config)
    assert load_checkpoint(tmp_path / "c").fingerprint == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_fingerprint_changes_with_any_weight(tiny_model):
    before = fingerprint(tiny_model)
    with torch.no_grad():
        next(iter(tiny_model.parameters())).view(-1)[0] += 1e-6
    assert fingerprint(tiny_model) != before


def _write(tmp_path, tiny_model, tiny_config):
    path = tmp_path / "ckpt"
    save_checkpoint(tiny_model, path, config=tiny_config)
    return path, json.loads((path / "config.json").read_text())


def test_future_schema_is_refused(tmp_path, tiny_model, tiny_config):
    path, doc = _write(tmp_path, tiny_model, tiny_config)
    doc["schema_version"] = CHECKPOINT_SCHEMA_VERSION + 1
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="newer than this mesainterp reads"):
        load_checkpoint(path)


@pytest.mark.parametrize("field", ["schema_version", "model", "fingerprint", "format"])
def test_missing_top_level_field_is_named(tmp_path, tiny_model, tiny_config, field):
    path, doc = _write(tmp_path, tiny_model, tiny_config)
    del doc[field]
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=f"missing field '{field}'"):
        load_checkpoint(path)


def test_missing_model_field_is_named(tmp_path, tiny_model, tiny_config):
    path, doc = _write(tmp_path, tiny_model, tiny_config)
    del doc["model"]["n_heads"]
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"model\.n_heads: missing"):
        load_checkpoint(path)


def test_malformed_json_and_weights_are_refused(tmp_path, tiny_model, tiny_config):
    path, _ = _write(tmp_path, tiny_model, tiny_config)
    (path / "model.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_tampered_weights_fail_the_fingerprint(tmp_path, tiny_model, tiny_config):
    path, _ = _write(tmp_path, tiny_model, tiny_config)
    state = load_file(str(path / "model.safetensors"))
    name = sorted(state)[0]
    state[name] = state[name] + 1
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="do not match the fingerprint"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, tiny_model, tiny_config):
    path, doc = _write(tmp_path, tiny_model, tiny_config)
    doc["model"]["d_mlp"] = 128
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_checkpoint(tmp_path / "nope")
