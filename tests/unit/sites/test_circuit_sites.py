"""Circuits give their nodes and edges as Sites, and keep their names on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesainterp.attribution.graph import EdgeGraph
from mesainterp.discovery import Circuit, CircuitFormatError
from mesainterp.sites import Site

CIRCUITS = sorted(Path(__file__).resolve().parents[3].joinpath("circuits").glob("*/circuit.json"))


def test_edges_given_as_sites_save_as_the_same_names() -> None:
    order = EdgeGraph(n_layers=2, n_heads=2, attn_only=False).upstream
    by_name = Circuit.from_edges(
        {("embed", "L0H1.v"): 0.5, ("L0H1", "M1.in"): 0.25, ("M1", "logits"): -0.125},
        method="test",
        node_order=order,
    )
    by_site = Circuit.from_edges(
        {
            (Site(kind="embed"), Site(kind="v", layer=0, head=1)): 0.5,
            (Site(kind="z", layer=0, head=1), Site(kind="mlp_in", layer=1)): 0.25,
            (Site(kind="mlp_out", layer=1), Site(kind="logits")): -0.125,
        },
        method="test",
        node_order=order,
    )
    assert by_site == by_name
    assert by_site.to_json() == by_name.to_json()
    assert by_name.node_sites == (
        Site(kind="embed"),
        Site(kind="z", layer=0, head=1),
        Site(kind="mlp_out", layer=1),
        Site(kind="logits"),
    )
    assert by_name.edge_sites[(Site(kind="z", layer=0, head=1), Site(kind="mlp_in", layer=1))] == (
        0.25
    )


@pytest.mark.parametrize("path", CIRCUITS, ids=lambda p: p.parent.name)
def test_committed_circuits_read_back_as_sites_and_unchanged(path: Path) -> None:
    circuit = Circuit.load(path)
    assert len(circuit.edges) > 0
    again = Circuit.from_edges(circuit.edge_sites, method=circuit.method)
    assert again.edges == circuit.edges
    assert {s.node_name for s in circuit.node_sites} == set(circuit.nodes)
    # Reading the file and writing it again changes nothing on disk.
    assert json.loads(circuit.to_json()) == json.loads(path.read_text())


def test_every_edge_of_a_graph_maps_to_sites_and_back() -> None:
    graph = EdgeGraph(n_layers=2, n_heads=2, attn_only=False)
    edges = dict.fromkeys(graph.edges(), 1.0)
    circuit = Circuit.from_edges(edges, method="test", node_order=graph.upstream)
    sites = circuit.edge_sites
    assert len(sites) == len(edges)
    assert {(u.node_name, d.node_name) for u, d in sites} == set(edges)


def test_a_name_outside_the_graph_is_refused_by_name() -> None:
    circuit = Circuit.from_edges({("embed", "L0H1.o"): 1.0}, method="test")
    with pytest.raises(CircuitFormatError, match=r"^edges: node: got 'L0H1\.o'"):
        _ = circuit.edge_sites
