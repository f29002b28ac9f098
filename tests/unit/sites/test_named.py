"""The named sweeps: each name is the site set written out by hand (the oracle)."""

from __future__ import annotations

import pytest

from mesainterp.errors import ConfigError
from mesainterp.model.build import ModelShape
from mesainterp.sites import Site
from mesainterp.sites.named import SWEEPS, named_sites

SHAPE = ModelShape(n_layers=2, n_heads=3, d_model=12, d_head=4, n_ctx=8, d_vocab=5,
                   d_vocab_out=5, attn_only=False)  # fmt: skip
SEQ = 4


def _by_hand(sweep: str, shape: ModelShape) -> list[Site]:
    layers, heads, positions = range(shape.n_layers), range(shape.n_heads), range(SEQ)
    z = [Site(kind="z", layer=layer, head=h) for layer in layers for h in heads]
    mlps = [Site(kind="mlp_out", layer=layer) for layer in layers]
    return {
        "resid": [
            Site(kind="resid_pre", layer=layer, pos=p) for layer in layers for p in positions
        ],
        "heads": z,
        "heads-by-pos": [
            Site(kind="z", layer=layer, head=h, pos=p)
            for layer in layers
            for h in heads
            for p in positions
        ],
        "mlp": [Site(kind="mlp_out", layer=layer, pos=p) for layer in layers for p in positions],
        "path": z + ([] if shape.attn_only else mlps),
    }[sweep]


@pytest.mark.parametrize("sweep", SWEEPS)
def test_each_named_sweep_is_its_hand_written_site_set(sweep):
    assert named_sites(sweep, SHAPE, seq_len=SEQ) == _by_hand(sweep, SHAPE)


def test_the_path_sweep_of_an_attention_only_model_has_no_mlp():
    shape = ModelShape(**(SHAPE.__dict__ | {"attn_only": True}))
    sites = named_sites("path", shape)
    assert sites == _by_hand("path", shape) and {s.kind for s in sites} == {"z"}


def test_bad_names_and_missing_lengths_are_refused():
    with pytest.raises(ConfigError, match=r"sweep: unknown sweep 'heads-by-layer'.*'resid'"):
        named_sites("heads-by-layer", SHAPE, seq_len=SEQ)
    with pytest.raises(ConfigError, match="seq_len"):
        named_sites("resid", SHAPE)
