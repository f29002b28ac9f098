"""The probe table with its controls, saved files, and the `probe` command."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mesainterp.cli.main import main
from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.probes.controls import TABLE_COLUMNS, ProbeSpec, run_probes, save_table
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.sites import Site
from mesainterp.tasks.tree_path import TreePathTask


def _dataset(seed: int, signal: float) -> ActivationDataset:
    gen = torch.Generator().manual_seed(seed)
    n, d = 300, 8
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.randn(3, n, d, generator=gen)
    x[2] += signal * torch.randn(3, d, generator=gen)[y]
    sites = tuple(Site(kind="resid_post", layer=i, pos=4) for i in range(3))
    w = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return ActivationDataset(
        sites=sites,
        features=x,
        labels={"goal": y, "w": w, "set": torch.rand(n, 3, generator=gen) > 0.5},
    )


def test_table_reports_every_control() -> None:
    trained, twin = _dataset(0, 4.0), _dataset(0, 0.0)
    result = run_probes(
        trained, ProbeSpec(target="goal", folds=3), random_init=twin, provenance={"x": 1}
    )
    t = result.table
    assert tuple(t.columns) == TABLE_COLUMNS
    assert list(t["layer"]) == [0, 1, 2]
    top = t.iloc[2]
    assert top["value"] > 0.9
    assert top["random_init"] < 0.6
    assert abs(top["shuffled"] - 1 / 3) < 0.1
    assert top["selectivity"] == pytest.approx(top["value"] - top["shuffled"])
    assert 0.3 < top["majority"] < 0.45
    assert result.provenance["x"] == 1 and result.provenance["probe_spec"]["target"] == "goal"


def test_kinds_are_inferred_from_the_label() -> None:
    data = _dataset(1, 2.0)
    assert run_probes(data, ProbeSpec(target="w", folds=3)).table["kind"].iloc[0] == "ridge"
    assert run_probes(data, ProbeSpec(target="set", folds=3)).table["kind"].iloc[0] == "multilabel"
    no_twin = run_probes(data, ProbeSpec(target="goal", folds=3)).table
    assert no_twin["random_init"].isna().all()


def test_spec_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="kind"):
        ProbeSpec(target="goal", kind="svm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="C"):
        ProbeSpec(target="goal", C=0)
    with pytest.raises(ConfigError, match="target"):
        run_probes(_dataset(0, 1.0), ProbeSpec(target="goall"))


def test_save_table_writes_parquet_csv_and_sidecar(tmp_path) -> None:
    result = run_probes(_dataset(0, 1.0), ProbeSpec(target="goal", folds=3), provenance={"seed": 0})
    paths = save_table(result.table, tmp_path, stem="probes", provenance=result.provenance)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["parquet"]), result.table)
    assert len(pd.read_csv(paths["csv"])) == 3
    sidecar = json.loads(paths["json"].read_text())
    assert sidecar["provenance"]["seed"] == 0 and sidecar["rows"] == 3


def test_probe_command_end_to_end(tmp_path, capsys) -> None:
    task = TreePathTask(n_nodes=7, max_depth=3)
    config = ModelConfig(
        n_layers=2,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=32,
        d_vocab=task.d_vocab,
        n_ctx=task.seq_len,
    )
    save_checkpoint(build_model(config), tmp_path / "ckpt", config=config, task=task.config_dict())
    out = tmp_path / "out"
    argv = ["--json", "probe", str(tmp_path / "ckpt"), "--target", "goal", "--out", str(out)]
    argv += ["--n-examples", "150", "--positions", f"{task.goal_pos},{task.prompt_len - 1}"]
    argv += ["--folds", "3", "--causal-pairs", "8", "--n-random", "1"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["probes"]) == 4
    assert {r["layer"] for r in data["causal"]} == {0, 1}
    for name in (
        "probes.parquet",
        "probes.csv",
        "probes.json",
        "causal.parquet",
        "probes.png",
        "probes_heatmap.png",
    ):
        assert (out / name).is_file()
    assert main(["probe", str(tmp_path / "ckpt"), "--target", "nope", "--out", str(out)]) == 2
