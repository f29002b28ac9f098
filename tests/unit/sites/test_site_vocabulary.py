"""One Site vocabulary: roles, the model-wide kinds, dict round trips, hook names and the
edge graph's node names."""

from __future__ import annotations

import json

import pytest

from mesainterp.attribution.graph import EdgeGraph
from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.sites import (
    GRAPH_KINDS,
    HEAD_KINDS,
    MODEL_KINDS,
    RECEIVER_KINDS,
    SENDER_KINDS,
    SITE_KINDS,
    Site,
    SiteError,
    validate_sites,
)


def _one_of_each_kind() -> list[Site]:
    out = []
    for kind in SITE_KINDS:
        layer = None if kind in MODEL_KINDS else 1
        head = 0 if kind in HEAD_KINDS else None
        out.append(Site(kind=kind, layer=layer, head=head))  # type: ignore[arg-type]
    return out


def test_role_is_shown_but_not_part_of_identity() -> None:
    plain = Site(kind="resid_post", layer=1, pos=3)
    named = Site(kind="resid_post", layer=1, pos=3, role="S2")
    assert named == plain
    assert len({named, plain}) == 1
    assert not named < plain and not plain < named
    assert named.label() == "L1 resid_post @3 (S2)"
    assert plain.label() == "L1 resid_post @3"
    assert Site(kind="logits").label() == "logits"
    # A different place is still a different site, whatever its role.
    assert Site(kind="resid_post", layer=1, pos=4, role="S2") != named


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "logits", "layer": 0}, "layer"),
        ({"kind": "embed", "layer": 1}, "layer"),
        ({"kind": "resid_pre"}, "layer"),
        ({"kind": "mlp_in", "layer": 0, "head": 1}, "head"),
        ({"kind": "q", "layer": 0}, "head"),
        ({"kind": "resid_pre", "layer": 0, "role": ""}, "role"),
        ({"kind": "resid_pre", "layer": 0, "role": 3}, "role"),
    ],
)
def test_new_kinds_are_validated_by_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        Site(**kwargs)


def test_unknown_kind_lists_every_kind() -> None:
    with pytest.raises(ConfigError, match=r"^kind: .*'mlp_in'.*'logits'"):
        Site(kind="mlp", layer=0)  # type: ignore[arg-type]


def test_block_refuses_model_wide_sites() -> None:
    assert Site(kind="mlp_in", layer=2).block == 2
    with pytest.raises(ConfigError, match=r"^layer: a 'logits' site belongs to no block"):
        _ = Site(kind="logits").block


def test_dict_round_trip_through_json_for_every_kind() -> None:
    sites = [*_one_of_each_kind(), Site(kind="resid_pre", layer=0, pos=2, role="END")]
    for site in sites:
        back = Site.from_dict(json.loads(json.dumps(site.to_dict())))
        assert back == site and back.role == site.role
    assert "role" not in Site(kind="z", layer=0, head=0).to_dict()


def test_from_dict_names_bad_fields() -> None:
    with pytest.raises(ConfigError, match=r"^site\.hook: unknown field"):
        Site.from_dict({"kind": "resid_pre", "layer": 0, "hook": "x"})
    with pytest.raises(ConfigError, match=r"^sites\[2\]\.kind: missing"):
        Site.from_dict({"layer": 0}, where="sites[2]")
    with pytest.raises(ConfigError, match=r"^layer:"):
        Site.from_dict({"kind": "resid_pre", "layer": "1"})


def test_every_hook_name_is_a_hook_of_the_bridge(tiny_model) -> None:
    hooks = set(tiny_model.hook_dict)
    missing = [s.hook_name for s in _one_of_each_kind() if s.hook_name not in hooks]
    assert missing == []
    # The check can fail: a misspelt hook is not in the bridge.
    assert "blocks.1.hook_mlp_inn" not in hooks


def test_from_hook_name_inverts_hook_name_for_headless_kinds() -> None:
    for site in _one_of_each_kind():
        if site.kind in HEAD_KINDS:
            continue
        assert Site.from_hook_name(site.hook_name, pos=4) == Site(
            kind=site.kind, layer=site.layer, pos=4
        )
    with pytest.raises(ConfigError, match=r"^hook: no site lives on 'blocks\.0\.attn\.hook_z'"):
        Site.from_hook_name("blocks.0.attn.hook_z")


@pytest.mark.parametrize("attn_only", [False, True])
def test_every_graph_node_maps_to_one_site_and_back(attn_only: bool) -> None:
    graph = EdgeGraph(n_layers=3, n_heads=2, attn_only=attn_only)
    names = [*graph.upstream, *graph.downstream]
    sites = [Site.from_node_name(n) for n in names]
    assert [s.node_name for s in sites] == names
    assert len(set(sites)) == len(names)  # no two nodes share a site
    assert {s.kind for s in map(Site.from_node_name, graph.upstream)} <= {
        "embed",
        "pos_embed",
        *SENDER_KINDS,
    }
    assert {s.kind for s in map(Site.from_node_name, graph.downstream)} <= set(RECEIVER_KINDS)
    # Each layered node's site sits at the layer the graph gives it.
    for name, layer in zip(graph.downstream, graph.down_layer, strict=True):
        if name != "logits":
            assert Site.from_node_name(name).layer == layer


def test_node_names_of_known_sites() -> None:
    expected = {
        "L1H0": Site(kind="z", layer=1, head=0),
        "L1H0.q": Site(kind="q", layer=1, head=0),
        "L0H3.v": Site(kind="v", layer=0, head=3),
        "M2": Site(kind="mlp_out", layer=2),
        "M2.in": Site(kind="mlp_in", layer=2),
        "embed": Site(kind="embed"),
        "pos_embed": Site(kind="pos_embed"),
        "logits": Site(kind="logits"),
    }
    for name, site in expected.items():
        assert site.node_name == name
        assert Site.from_node_name(name) == site


@pytest.mark.parametrize("name", ["L1H", "M2.out", "L1H0.o", "H0", "Logits", "L01H0x", ""])
def test_bad_node_names_are_refused_with_the_forms(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^node: .*\(allowed: embed, pos_embed, logits"):
        Site.from_node_name(name)


def test_sites_outside_the_graph_have_no_node_name() -> None:
    with pytest.raises(ConfigError, match=r"^kind: 'resid_pre' is not a node"):
        _ = Site(kind="resid_pre", layer=0).node_name
    with pytest.raises(ConfigError, match=r"^pos: graph nodes span every position"):
        _ = Site(kind="z", layer=0, head=0, pos=2).node_name
    assert set(GRAPH_KINDS) <= set(SITE_KINDS)


def test_patching_refuses_places_it_cannot_replace(tiny_model) -> None:
    shape = model_shape(tiny_model)
    for site in (Site(kind="mlp_in", layer=0), Site(kind="logits"), Site(kind="embed")):
        with pytest.raises(SiteError, match=r"kind: got .*\(allowed: 'resid_pre'"):
            validate_sites([site], shape, seq_len=4)
    assert validate_sites([Site(kind="q", layer=0, head=1)], shape, seq_len=4)


def test_attention_only_graph_has_no_mlp_nodes() -> None:
    model = build_model(
        ModelConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_vocab=7, n_ctx=8, attn_only=True)
    )
    graph = EdgeGraph.of(model_shape(model))
    assert not any(Site.from_node_name(n).kind in ("mlp_in", "mlp_out") for n in graph.upstream)


def test_grouped_query_graph_nodes_map_to_sites_the_model_accepts() -> None:
    from mesainterp.attribution.edge_forward import graph_of
    from mesainterp.patching.fast import FastForward
    from mesainterp.sites.sweeps import KV_KINDS
    from tests.families import family_bridge

    model = family_bridge("llama")  # 4 query heads over 2 key/value heads, 2 layers
    shape = model_shape(model)
    graph = graph_of(FastForward(model))
    names = [*graph.upstream, *graph.downstream]
    sites = [Site.from_node_name(n) for n in names]
    assert [s.node_name_for(grouped_query=shape.grouped_query) for s in sites] == names
    assert len(set(sites)) == len(names)
    kv = [s for s in sites if s.kind in KV_KINDS]
    assert sorted((s.kind, s.layer, s.head) for s in kv) == [
        (kind, layer, group) for kind in ("k", "v") for layer in (0, 1) for group in (0, 1)
    ]
    # Each is a k/v site the patching engine validates on this model (head < n_kv_heads) ...
    assert validate_sites(kv, shape, seq_len=4) == kv
    # ... whose node is read by the query heads of its group.
    assert graph.owners(Site(kind="v", layer=1, head=1).node_name_for(grouped_query=True)) == (
        "L1H2",
        "L1H3",
    )
    # Named as per-head inputs, the groups are not nodes of this graph.
    assert Site(kind="k", layer=0, head=1).node_name not in names


def test_key_value_head_names_need_a_key_or_value_port() -> None:
    for name in ("L0KV1", "L0KV1.q", "L0KV.k"):
        with pytest.raises(ConfigError, match=r"^node: .*L\{l\}KV\{g\}\.k/\.v"):
            Site.from_node_name(name)
