"""Activation datasets: site validation, cached values, shards on disk."""

from __future__ import annotations

import json

import pytest
import torch

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.model import model_shape
from mesainterp.probes.dataset import (
    ActivationDataset,
    collect_activations,
    probe_sites,
    validate_hook_names,
)
from mesainterp.sites import Site
from mesainterp.tasks.base import IGNORE_INDEX, TaskBatch


def _batches(n_batches: int = 3, size: int = 5, seq: int = 10, vocab: int = 13):
    out = []
    for i in range(n_batches):
        gen = torch.Generator().manual_seed(i)
        tokens = torch.randint(0, vocab, (size, seq), generator=gen)
        out.append(
            TaskBatch(
                inputs=tokens,
                targets=torch.full((size, seq), IGNORE_INDEX),
                prompt_len=seq,
                labels={"goal": tokens[:, 2].clone(), "set": tokens[:, :4] > 6},
            )
        )
    return out


def test_misspelled_site_is_refused_with_valid_names(tiny_model) -> None:
    with pytest.raises(ConfigError) as err:
        validate_hook_names(tiny_model, ["blocks.0.hook_resid_pots"])
    assert "blocks.0.hook_resid_pots" in str(err.value)
    assert "blocks.0.hook_resid_post" in str(err.value)
    with pytest.raises(ConfigError):
        collect_activations(tiny_model, _batches(), [Site(kind="resid_post", layer=9, pos=0)])


@pytest.mark.parametrize(
    ("site", "field"),
    [
        (Site(kind="z", layer=0, head=0, pos=1), r"sites\[0\]\.kind"),
        (Site(kind="logits"), r"sites\[0\]\.kind"),
        (Site(kind="resid_post", layer=0), r"sites\[0\]\.pos"),
        ("blocks.0.hook_resid_post", r"sites\[0\]"),
    ],
)
def test_probe_sites_are_validated(tiny_model, site, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        collect_activations(tiny_model, _batches(1), [site])


def test_probe_sites_sweep_layers_then_positions(tiny_model) -> None:
    shape = model_shape(tiny_model)
    sites = probe_sites(shape, [1, 4], kind="resid_pre")
    assert [(s.layer, s.pos) for s in sites] == [(0, 1), (0, 4), (1, 1), (1, 4)]
    assert {s.kind for s in sites} == {"resid_pre"}
    assert probe_sites(shape, [0])[0] == Site(kind="resid_post", layer=0, pos=0)
    with pytest.raises(ConfigError, match=r"^kind: got 'z' for a probe site"):
        probe_sites(shape, [0], kind="z")  # type: ignore[arg-type]


def test_features_equal_a_full_cache(tiny_model) -> None:
    sites = probe_sites(model_shape(tiny_model), [1, 4, 9])
    sites += [Site(kind="attn_out", layer=1, pos=2), Site(kind="mlp_out", layer=0, pos=7)]
    batches = _batches()
    data = collect_activations(tiny_model, batches, sites)
    assert data.features.shape == (8, 15, 32)
    assert torch.equal(data.labels["goal"], torch.cat([b.labels["goal"] for b in batches]))
    with torch.no_grad():
        _, cache = tiny_model.run_with_cache(torch.cat([b.inputs for b in batches]))
    for i, site in enumerate(sites):
        torch.testing.assert_close(data.features[i], cache[site.hook_name][:, site.pos])


def test_only_requested_hooks_are_cached(tiny_model) -> None:
    seen: list[object] = []
    original = tiny_model.run_with_cache

    def spy(*args, **kwargs):
        seen.append(kwargs.get("names_filter"))
        return original(*args, **kwargs)

    tiny_model.run_with_cache = spy
    try:
        collect_activations(
            tiny_model, _batches(1), probe_sites(model_shape(tiny_model), [0, 1])[:2]
        )
    finally:
        del tiny_model.run_with_cache
    assert seen == [["blocks.0.hook_resid_post"]]


def test_large_datasets_spill_to_shards_and_load_back(tiny_model, tmp_path) -> None:
    sites = probe_sites(model_shape(tiny_model), [0, 3])
    in_memory = collect_activations(tiny_model, _batches(), sites)
    with pytest.raises(MesaInterpError, match="out_dir"):
        collect_activations(tiny_model, _batches(), sites, max_memory_bytes=100)
    spilled = collect_activations(
        tiny_model, _batches(), sites, max_memory_bytes=100, out_dir=tmp_path / "acts"
    )
    assert len(list((tmp_path / "acts").glob("shard_*.safetensors"))) == 3
    torch.testing.assert_close(spilled.features, in_memory.features)
    loaded = ActivationDataset.load(tmp_path / "acts")
    assert loaded.sites == tuple(sites)
    assert torch.equal(loaded.labels["set"], in_memory.labels["set"])
    part = ActivationDataset.load(tmp_path / "acts", site_indices=[2])
    assert part.sites == (sites[2],)
    torch.testing.assert_close(part.features[0], in_memory.features[2])


def test_save_load_round_trip(tiny_model, tmp_path) -> None:
    data = collect_activations(
        tiny_model, _batches(), probe_sites(model_shape(tiny_model), [5]), metadata={"seed": 3}
    )
    data.save(tmp_path / "d", shard_size=4)
    back = ActivationDataset.load(tmp_path / "d")
    assert torch.equal(back.features, data.features)
    assert back.metadata == {"seed": 3}
    with pytest.raises(MesaInterpError):
        ActivationDataset.load(tmp_path)


def test_position_past_sequence_is_refused(tiny_model) -> None:
    with pytest.raises(ConfigError, match="pos"):
        collect_activations(tiny_model, _batches(), [Site(kind="resid_post", layer=0, pos=12)])


def test_version_1_manifests_read_back_as_sites(tiny_model, tmp_path) -> None:
    sites = probe_sites(model_shape(tiny_model), [2])
    data = collect_activations(tiny_model, _batches(1), sites)
    data.save(tmp_path / "v2")
    manifest = json.loads((tmp_path / "v2" / "activations.json").read_text())
    assert manifest["schema_version"] == 2
    assert manifest["sites"][0] == {"kind": "resid_post", "layer": 0, "head": None, "pos": 2}
    # Written by an older version: sites were {"hook", "pos"}.
    manifest["schema_version"] = 1
    manifest["sites"] = [{"hook": s.hook_name, "pos": s.pos} for s in sites]
    (tmp_path / "v2" / "activations.json").write_text(json.dumps(manifest))
    back = ActivationDataset.load(tmp_path / "v2")
    assert back.sites == tuple(sites)
    assert torch.equal(back.features, data.features)
