"""`mesainterp patch` on a checkpoint saved from a random model with a real task."""

from __future__ import annotations

import json

import pytest

from mesainterp.cli.main import main
from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.patching import load_result
from mesainterp.tasks.registry import get_task


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
        d_vocab=task.d_vocab, d_vocab_out=task.d_vocab_out, n_ctx=task.seq_len, seed=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tree"
    save_checkpoint(build_model(config), path, config=config, task=task.config_dict())
    return path


@pytest.mark.parametrize("sweep", ["resid", "heads", "heads-by-pos", "mlp", "path"])
def test_patch_command_writes_table_provenance_and_heatmap(checkpoint, tmp_path, capsys, sweep):
    out = tmp_path / sweep
    argv = ["--json", "patch", str(checkpoint), "--sites", sweep, "--out", str(out)]
    argv += ["--n", "6", "--n-boot", "20"]
    if sweep == "mlp":
        argv += ["--direction", "noising", "--ablation", "mean"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["n_sites"] > 0 and data["n"] == 6
    for name in ("results.parquet", "results.csv", "provenance.json", "heatmap.png"):
        assert (out / name).is_file(), name
    result = load_result(out)
    assert len(result.table) == data["n_sites"]
    prov = result.provenance
    assert prov["config"]["task"]["name"] == "tree-path"
    assert prov["patching"]["sweep"] == sweep
    assert prov["model_fingerprint"].startswith("sha256:")


def test_patch_command_refuses_bad_input(checkpoint, tmp_path, capsys):
    assert main(["patch", str(tmp_path / "nope"), "--sites", "resid", "--out", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
    argv = ["patch", str(checkpoint), "--sites", "resid", "--out", str(tmp_path), "--n", "1"]
    assert main(argv) == 2
