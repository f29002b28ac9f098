"""`search.positions`: circuit searches per position and per task role, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesainterp.cli.main import main
from mesainterp.discovery import Circuit, SearchConfig, load_config
from mesainterp.discovery.search import prepare, run_search
from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.tasks import TreePathTask


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    task = TreePathTask(n_nodes=4, max_depth=2)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=task.d_vocab,
        n_ctx=task.seq_len, seed=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tiny-tree"
    save_checkpoint(build_model(config), path, config=config, task=task.config_dict())
    return path


def _config(checkpoint: Path, search: str) -> SearchConfig:
    return SearchConfig.from_dict({
        "model": {"checkpoint": str(checkpoint)},
        "search": {"n_examples": 6, **search},  # type: ignore[dict-item]
        "faithfulness": {"ablations": ["resample"], "curve_k": [3], "n_boot": 20},
    })  # fmt: skip


def test_positions_are_checked_and_left_out_by_default() -> None:
    with pytest.raises(ConfigError) as info:
        SearchConfig(zoo="x", top_n=3, positions="every")
    assert info.value.field == "search.positions"
    with pytest.raises(ConfigError, match="node-attribution"):
        SearchConfig(zoo="x", top_n=3, method="node-attribution", positions="each")
    assert "positions" not in SearchConfig(zoo="x", top_n=3).to_dict()["search"]
    roles = SearchConfig(zoo="x", method="acdc", threshold=0.1, positions="roles")
    assert SearchConfig.from_dict(roles.to_dict()) == roles


def test_eap_by_role_joins_chunks_like_one_run(checkpoint: Path) -> None:
    whole = run_search(prepare(_config(checkpoint, {"top_n": 12, "positions": "roles"})))
    chunked = run_search(
        prepare(_config(checkpoint, {"top_n": 12, "positions": "roles", "score_chunk": 4}))
    )
    circuit = whole.circuit
    assert circuit.positions is not None and circuit.positions["granularity"] == "roles"
    assert "goal" in circuit.positions["labels"] and circuit.positions["labels"][-1] == "other"
    assert chunked.circuit.edges == pytest.approx(circuit.edges, abs=1e-6)
    assert all("@" in u and "@" in d for u, d in circuit.edges)
    assert circuit.faithfulness is not None


def test_acdc_per_position_writes_a_positional_circuit_and_report(
    tmp_path: Path, checkpoint: Path
) -> None:
    text = (
        f'[model]\ncheckpoint = "{checkpoint}"\n[search]\nmethod = "acdc"\nthreshold = 0.02\n'
        'positions = "each"\nn_examples = 4\n[faithfulness]\nablations = ["resample"]\n'
        "curve_k = [2]\nn_boot = 20\n"
    )
    path = tmp_path / "search.toml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out)]) == 0
    circuit = Circuit.load(out / "circuit.json")
    assert circuit.positions is not None and circuit.positions["granularity"] == "each"
    assert circuit.provenance["config"]["search"] == load_config(path).to_dict()
    assert len(circuit.edges) > 0 and circuit.faithfulness is not None
    page = (out / "report.html").read_text()
    assert " @" in page  # nodes are labelled with their position
