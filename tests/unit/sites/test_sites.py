from __future__ import annotations

import pytest

from mesainterp.errors import ConfigError
from mesainterp.model import model_shape
from mesainterp.sites import (
    Site,
    SiteError,
    attn_out_sites,
    head_sites,
    mlp_sites,
    resid_sites,
    unique_hook_names,
    validate_sites,
)


def test_site_is_a_hashable_value() -> None:
    a = Site(kind="z", layer=1, head=0, pos=3)
    assert a == Site(kind="z", layer=1, head=0, pos=3)
    assert len({a, Site(kind="z", layer=1, head=0, pos=3)}) == 1
    assert a.hook_name == "blocks.1.attn.hook_z"
    assert a.label() == "L1H0 z @3"
    with pytest.raises(AttributeError):
        a.layer = 2  # type: ignore[misc]


def test_misspelled_kind_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"kind.*allowed: 'resid_pre'"):
        Site(kind="resid", layer=0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "z", "layer": 0}, "head"),
        ({"kind": "resid_pre", "layer": 0, "head": 1}, "head"),
        ({"kind": "mlp_out", "layer": -1}, "layer"),
        ({"kind": "q", "layer": 0, "head": 0, "pos": -2}, "pos"),
        ({"kind": "q", "layer": True, "head": 0}, "layer"),
    ],
)
def test_bad_fields_are_refused(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        Site(**kwargs)


def test_site_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Site("z", 0, 0)  # type: ignore[misc]


def test_sweeps_have_the_expected_sizes(tiny_model) -> None:
    shape = model_shape(tiny_model)
    assert len(resid_sites(shape, seq_len=5)) == shape.n_layers * 5
    assert len(resid_sites(shape, by_pos=False)) == shape.n_layers
    assert len(head_sites(shape)) == shape.n_layers * shape.n_heads
    assert len(head_sites(shape, seq_len=5, by_pos=True, kind="q")) == 2 * 2 * 5
    assert len(mlp_sites(shape, seq_len=4)) == 8
    assert len(attn_out_sites(shape, by_pos=False)) == 2
    names = unique_hook_names(head_sites(shape))
    assert names == ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    with pytest.raises(ConfigError, match="seq_len"):
        resid_sites(shape)
    with pytest.raises(ConfigError, match="kind"):
        head_sites(shape, kind="resid_pre")


@pytest.mark.parametrize(
    ("site", "message"),
    [
        (Site(kind="resid_pre", layer=2), r"layer 2 out of range \(allowed: 0..1\)"),
        (Site(kind="z", layer=0, head=2), r"head 2 out of range \(allowed: 0..1\)"),
        (Site(kind="mlp_out", layer=0, pos=10), r"pos 10 out of range \(allowed: 0..9"),
    ],
)
def test_validation_against_the_model(tiny_model, site: Site, message: str) -> None:
    with pytest.raises(SiteError, match=message):
        validate_sites([site], model_shape(tiny_model), seq_len=10)


def test_validation_refuses_empty_and_non_sites(tiny_model) -> None:
    shape = model_shape(tiny_model)
    with pytest.raises(SiteError, match="empty"):
        validate_sites([], shape, seq_len=4)
    with pytest.raises(SiteError, match="expected a Site"):
        validate_sites(["blocks.0.hook_resid_pre"], shape, seq_len=4)  # type: ignore[list-item]


def test_attention_only_models_have_no_mlp_sites() -> None:
    from mesainterp.model import ModelConfig, build_model

    model = build_model(
        ModelConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_vocab=7, n_ctx=8, attn_only=True)
    )
    shape = model_shape(model)
    with pytest.raises(SiteError, match="attention-only"):
        mlp_sites(shape, seq_len=3)
    with pytest.raises(SiteError, match="attention-only"):
        validate_sites([Site(kind="resid_mid", layer=0)], shape, seq_len=3)
