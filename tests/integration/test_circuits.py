"""Every committed circuit is found again by re-running its search."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesainterp import zoo
from mesainterp.discovery import Circuit, load_config
from mesainterp.discovery.search import prepare, run_search

CIRCUITS = Path(__file__).resolve().parents[2] / "circuits"
FOLDERS = sorted(p.parent for p in CIRCUITS.glob("*/search.toml"))

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_shipped_model_has_a_circuit() -> None:
    have = {folder.name for folder in FOLDERS if (folder / "circuit.json").is_file()}
    # Memorizers are controls trained on a fixed set, not organisms with a circuit to find.
    organisms = {m for m in zoo.list_models() if not m.endswith("-memorizer")}
    missing = sorted(organisms - have)
    assert not missing, f"no committed circuit for {missing}"


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_search_finds_the_committed_circuit(folder: Path) -> None:
    config = load_config(folder / "search.toml")
    if config.zoo is not None and config.zoo not in zoo.list_models():
        pytest.skip(f"zoo model {config.zoo!r} is not shipped")
    committed = Circuit.load(folder / "circuit.json")
    assert committed.provenance["config"]["search"] == config.to_dict()
    outcome = run_search(prepare(config))
    found = outcome.circuit
    assert found.provenance["model_fingerprint"] == committed.provenance["model_fingerprint"]
    assert found.edge_set == committed.edge_set
    for edge, score in committed.edges.items():
        assert found.edges[edge] == pytest.approx(score, rel=1e-3, abs=1e-4), edge
    for card in ("README.md", "faithfulness.csv"):
        assert (folder / card).is_file()
