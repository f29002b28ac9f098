"""`model_shape` reads every family's flags; sites know the KV-head count of grouped-query attention."""

from __future__ import annotations

import pytest
import torch

from mesainterp.model import model_shape
from mesainterp.sites import Site, SiteError, head_sites, validate_sites

EXPECTED = {
    # family: (n_kv_heads, positions, normalization, gated, parallel, source)
    "gpt2": (4, "standard", "LN", False, False, "hf"),
    "neox": (4, "rotary", "LN", False, True, "hf"),
    "llama": (2, "rotary", "RMS", True, False, "hf"),
    "gemma": (2, "rotary", "RMS", True, False, "hf"),
    "gemma2": (2, "rotary", "RMS", True, False, "hf"),
    "native-gpt2": (4, "standard", "LN", False, False, "native"),
    "native-llama": (2, "rotary", "RMS", True, False, "native"),
}


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_shape_flags(bridges, family: str) -> None:
    shape = model_shape(bridges[family])
    got = (
        shape.n_kv_heads,
        shape.positional_embedding,
        shape.normalization,
        shape.gated_mlp,
        shape.parallel_attn_mlp,
        shape.source,
    )
    assert got == EXPECTED[family]
    assert (shape.n_layers, shape.n_heads, shape.d_head, shape.d_model) == (2, 4, 8, 32)
    assert shape.grouped_query == (shape.n_kv_heads < shape.n_heads)
    # Hook shapes agree: hook_k holds exactly the KV heads the shape names.
    model = bridges[family]
    _, cache = model.run_with_cache(
        torch.zeros(1, 3, dtype=torch.long),
        names_filter=lambda n: n in ("blocks.0.attn.hook_k", "blocks.0.attn.hook_q"),
    )
    assert cache["blocks.0.attn.hook_k"].shape[2] == shape.n_kv_heads
    assert cache["blocks.0.attn.hook_q"].shape[2] == shape.n_heads


def test_soft_caps_are_read(bridges) -> None:
    assert model_shape(bridges["gemma2"]).attn_soft_cap == 50.0
    assert model_shape(bridges["gemma2"]).logit_soft_cap == 30.0
    assert model_shape(bridges["llama"]).attn_soft_cap is None


@pytest.mark.parametrize("family", ["llama", "native-llama"])
def test_kv_sites_follow_the_kv_heads(bridges, family: str) -> None:
    shape = model_shape(bridges[family])
    for kind, heads in (("k", 2), ("v", 2), ("q", 4), ("z", 4), ("pattern", 4)):
        assert {s.head for s in head_sites(shape, kind=kind)} == set(range(heads))
    validate_sites(
        [Site(kind="k", layer=1, head=1), Site(kind="q", layer=1, head=3)], shape, seq_len=4
    )
    with pytest.raises(
        SiteError, match=r"head 2 out of range \(allowed: 0\.\.1; k has 2 key/value"
    ):
        validate_sites([Site(kind="k", layer=0, head=2)], shape, seq_len=4)
    with pytest.raises(SiteError, match=r"head 4 out of range \(allowed: 0\.\.3\)"):
        validate_sites([Site(kind="z", layer=0, head=4)], shape, seq_len=4)


def test_without_gqa_kv_sites_span_every_head(bridges) -> None:
    shape = model_shape(bridges["gpt2"])
    assert len(head_sites(shape, kind="v")) == 2 * 4
    validate_sites([Site(kind="v", layer=0, head=3)], shape, seq_len=4)


def test_parallel_blocks_have_no_resid_mid(bridges) -> None:
    with pytest.raises(SiteError, match=r"in parallel.*no resid_mid"):
        validate_sites([Site(kind="resid_mid", layer=0)], model_shape(bridges["neox"]), seq_len=4)
    validate_sites([Site(kind="resid_mid", layer=0)], model_shape(bridges["llama"]), seq_len=4)


def test_bad_kv_head_count_is_refused() -> None:
    from mesainterp.errors import MesaInterpError
    from mesainterp.model import ModelShape

    with pytest.raises(MesaInterpError, match="n_kv_heads: got 3, must be a positive divisor"):
        ModelShape(n_layers=1, n_heads=4, d_model=8, d_head=2, n_ctx=4, d_vocab=5,
                   d_vocab_out=5, attn_only=True, n_kv_heads=3)  # fmt: skip
    old_style = ModelShape(n_layers=1, n_heads=4, d_model=8, d_head=2, n_ctx=4, d_vocab=5,
                           d_vocab_out=5, attn_only=True)  # fmt: skip
    assert old_style.n_kv_heads == 4
