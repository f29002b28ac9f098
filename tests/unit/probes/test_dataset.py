"""Activation datasets: site validation, cached values, shards on disk."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.probes.dataset import (
    ActivationDataset,
    ProbeSite,
    collect_activations,
    resid_sites,
    validate_hook_names,
)
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
        collect_activations(
            tiny_model, _batches(), [ProbeSite(hook="blocks.9.hook_resid_post", pos=0)]
        )


def test_site_fields_are_validated() -> None:
    with pytest.raises(ConfigError, match="pos"):
        ProbeSite(hook="blocks.0.hook_resid_post", pos=-1)
    assert ProbeSite(hook="blocks.1.attn.hook_z", pos=0).layer == 1
    assert ProbeSite(hook="hook_embed", pos=0).layer == -1


def test_features_equal_a_full_cache(tiny_model) -> None:
    sites = resid_sites(2, [1, 4, 9])
    batches = _batches()
    data = collect_activations(tiny_model, batches, sites)
    assert data.features.shape == (6, 15, 32)
    assert torch.equal(data.labels["goal"], torch.cat([b.labels["goal"] for b in batches]))
    with torch.no_grad():
        _, cache = tiny_model.run_with_cache(torch.cat([b.inputs for b in batches]))
    for i, site in enumerate(sites):
        torch.testing.assert_close(data.features[i], cache[site.hook][:, site.pos])


def test_only_requested_hooks_are_cached(tiny_model) -> None:
    seen: list[object] = []
    original = tiny_model.run_with_cache

    def spy(*args, **kwargs):
        seen.append(kwargs.get("names_filter"))
        return original(*args, **kwargs)

    tiny_model.run_with_cache = spy
    try:
        collect_activations(tiny_model, _batches(1), resid_sites(1, [0, 1]))
    finally:
        del tiny_model.run_with_cache
    assert seen == [["blocks.0.hook_resid_post"]]


def test_large_datasets_spill_to_shards_and_load_back(tiny_model, tmp_path) -> None:
    sites = resid_sites(2, [0, 3])
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
    data = collect_activations(tiny_model, _batches(), resid_sites(2, [5]), metadata={"seed": 3})
    data.save(tmp_path / "d", shard_size=4)
    back = ActivationDataset.load(tmp_path / "d")
    assert torch.equal(back.features, data.features)
    assert back.metadata == {"seed": 3}
    with pytest.raises(MesaInterpError):
        ActivationDataset.load(tmp_path)


def test_position_past_sequence_is_refused(tiny_model) -> None:
    with pytest.raises(ConfigError, match="pos"):
        collect_activations(
            tiny_model, _batches(), [ProbeSite(hook="blocks.0.hook_resid_post", pos=12)]
        )
