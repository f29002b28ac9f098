"""The Circuit value and its JSON schema."""

from __future__ import annotations

import json

import pytest

from mesainterp.discovery import CIRCUIT_SCHEMA_VERSION, Circuit, CircuitFormatError


def _circuit() -> Circuit:
    return Circuit.from_edges(
        {("embed", "L0H1.v"): 0.5, ("L0H1", "L1H0.v"): 0.25, ("L1H0", "logits"): -0.125},
        method="acdc",
        params={"threshold": 0.01},
        ablation="resample",
        provenance={"model_name": "<b>m</b>", "seed": 0},
        node_order=("embed", "pos_embed", "L0H0", "L0H1", "L1H0", "L1H1"),
    )


def test_nodes_are_derived_from_edges_in_graph_order() -> None:
    assert _circuit().nodes == ("embed", "L0H1", "L1H0", "logits")


def test_json_round_trip(tmp_path) -> None:
    circuit = _circuit()
    path = circuit.save(tmp_path / "c" / "circuit.json")
    again = Circuit.load(path)
    assert again == circuit
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1  # position-agnostic: still version 1
    assert {"source": "L0H1", "target": "L1H0", "input": "v", "score": 0.25} in data["edges"]
    assert {"name": "embed", "layer": -1} in data["nodes"]


def test_future_version_is_refused_by_name() -> None:
    data = _circuit().to_dict() | {"schema_version": CIRCUIT_SCHEMA_VERSION + 1}
    with pytest.raises(CircuitFormatError, match=r"schema_version.*upgrade"):
        Circuit.from_dict(data)


@pytest.mark.parametrize("missing", ["schema_version", "edges", "provenance", "ablation"])
def test_missing_field_is_named(missing: str) -> None:
    data = _circuit().to_dict()
    del data[missing]
    with pytest.raises(CircuitFormatError, match=f"missing field '{missing}'"):
        Circuit.from_dict(data)


def test_bad_edge_fields_are_named() -> None:
    data = _circuit().to_dict()
    del data["edges"][1]["score"]
    with pytest.raises(CircuitFormatError, match=r"edges\[1\]\.score"):
        Circuit.from_dict(data)
    data = _circuit().to_dict()
    data["edges"][0]["input"] = "x"
    with pytest.raises(CircuitFormatError, match=r"edges\[0\]\.input"):
        Circuit.from_dict(data)
    with pytest.raises(CircuitFormatError, match="not valid JSON"):
        Circuit.from_json("{")
    with pytest.raises(CircuitFormatError, match="format"):
        Circuit.from_dict(_circuit().to_dict() | {"format": "other"})


def test_html_escapes_and_lists_edges() -> None:
    page = _circuit()._repr_html_()
    assert "&lt;b&gt;m&lt;/b&gt;" in page and "<b>m</b>" not in page
    assert page.count("<tr>") == 4
    assert "3 edges" in page
