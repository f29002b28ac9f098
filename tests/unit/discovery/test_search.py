"""The search config and `mesainterp search`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesainterp.cli.main import main
from mesainterp.discovery import Circuit, SearchConfig, load_config
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


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "search.toml"
    path.write_text(text)
    return path


def _config(checkpoint: Path, search: str) -> str:
    return (
        f'[model]\ncheckpoint = "{checkpoint}"\n\n[search]\n{search}\nn_examples = 8\n\n'
        "[faithfulness]\ncurve_k = [1, 5]\nn_boot = 50\n"
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[model]\nzoo = "x"\n[serch]\nmethod = "eap"\n', "serch"),
        ('[model]\nzoo = "x"\n[search]\nmethod = "ig"\ntop_n = 3\n', "search.method"),
        ('[model]\nzoo = "x"\n[search]\nmethod = "acdc"\n', "search.threshold"),
        ('[model]\nzoo = "x"\n[search]\nmethod = "eap"\n', "search.top_n"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nablation = "scrub"\n', "search.ablation"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nn_exampels = 3\n', "search.n_exampels"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\n[faithfulness]\ncurve_k = [1, -2]\n',
         "faithfulness.curve_k[1]"),
        ('[model]\nzoo = "x"\ncheckpoint = "y"\n[search]\ntop_n = 3\n', "model"),
        ('[search]\ntop_n = 3\n', "model"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nscore_chunk = 0\n', "search.score_chunk"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nscore_chunk = -2\n', "search.score_chunk"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nscore_chunk = 2.5\n', "search.score_chunk"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nscore_chunk = true\n', "search.score_chunk"),
        ('[model]\nzoo = "x"\n[search]\ntop_n = 3\nscore_chunk = "8"\n', "search.score_chunk"),
        ('[model]\nzoo = "x"\n[search]\nmethod = "acdc"\nthreshold = 0.1\nscore_chunk = 8\n',
         "search.score_chunk"),
    ],
)  # fmt: skip
def test_bad_configs_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.field == field


def test_config_round_trips_through_its_dict() -> None:
    config = SearchConfig(zoo="tree-path", method="acdc", threshold=0.1, curve_k=(1, 2))
    again = SearchConfig.from_dict(config.to_dict())
    assert again == config


@pytest.mark.parametrize("method", ["eap", "eap-ig", "node-attribution"])
@pytest.mark.parametrize("chunk", [1, 3, 64, 1000])
def test_score_chunk_takes_any_positive_size(tmp_path: Path, method: str, chunk: int) -> None:
    text = f'[model]\nzoo = "x"\n[search]\nmethod = "{method}"\ntop_n = 3\nscore_chunk = {chunk}\n'
    config = load_config(_write(tmp_path, text))
    assert config.score_chunk == chunk
    assert config.to_dict()["search"]["score_chunk"] == chunk
    assert SearchConfig.from_dict(config.to_dict()) == config


def test_score_chunk_is_left_out_of_the_dict_when_not_set() -> None:
    # So the config (and the provenance and run keys of existing searches) is unchanged.
    assert "score_chunk" not in SearchConfig(zoo="x", top_n=3).to_dict()["search"]


def test_score_chunk_refused_for_acdc_says_why() -> None:
    with pytest.raises(ConfigError, match="each edge after the last") as info:
        SearchConfig(zoo="x", method="acdc", threshold=0.1, score_chunk=4)
    assert info.value.field == "search.score_chunk"


def test_bad_config_writes_nothing(tmp_path: Path, checkpoint: Path, capsys) -> None:
    out = tmp_path / "out"
    bad = _write(tmp_path, _config(checkpoint, 'method = "eap"\ntop_n = 5\nmetric = "l2"'))
    assert main(["search", str(bad), "--out", str(out)]) == 2
    assert "search.metric" in capsys.readouterr().err
    assert not out.exists()
    missing = _write(tmp_path, '[model]\nzoo = "no-such-model"\n[search]\ntop_n = 3\n')
    assert main(["search", str(missing), "--out", str(out)]) == 2
    assert "model.zoo" in capsys.readouterr().err
    assert not out.exists()
    family = _write(tmp_path, _config(checkpoint, "top_n = 5") + '[task]\nfamily = "nope"\n')
    assert main(["search", str(family), "--out", str(out)]) == 2
    assert "task.family" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "search",
    ['method = "eap"\ntop_n = 30', 'method = "acdc"\nthreshold = 0.0\nablation = "mean"',
     'method = "node-attribution"\ntop_n = 2', 'method = "eap-ig"\ntop_n = 30\nig_steps = 2\nmetric = "kl"'],
)  # fmt: skip
def test_search_writes_circuit_tables_and_manifest(
    tmp_path: Path, checkpoint: Path, search: str
) -> None:
    config = _write(tmp_path, _config(checkpoint, search))
    out = tmp_path / "out"
    assert main(["--json", "search", str(config), "--out", str(out), "--no-report"]) == 0
    circuit = Circuit.load(out / "circuit.json")
    assert len(circuit.edges) > 0
    assert circuit.provenance["model_fingerprint"].startswith("sha256:")
    assert circuit.provenance["config"]["search"] == load_config(config).to_dict()
    for name in ("faithfulness.csv", "faithfulness.parquet", "run.json"):
        assert (out / name).is_file()
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["provenance"]["seed"] == 0
    header = (out / "faithfulness.csv").read_text().splitlines()[0]
    assert header == "measure,ablation,k,n_edges,value,ci_low,ci_high"


def test_search_builds_the_report(tmp_path: Path, checkpoint: Path) -> None:
    config = _write(tmp_path, _config(checkpoint, 'method = "eap"\ntop_n = 30'))
    out = tmp_path / "out"
    assert main(["search", str(config), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Circuit" in page and "faithfulness" in page
