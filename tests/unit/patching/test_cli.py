"""`mesainterp patch` on a checkpoint saved from a random model with a real task."""

from __future__ import annotations

import json

import pytest

from mesainterp.cli.main import main
from mesainterp.patching import load_result


@pytest.mark.parametrize("sweep", ["resid", "heads", "heads-by-pos", "mlp", "path"])
def test_patch_command_writes_table_provenance_and_heatmap(
    tiny_checkpoint, tmp_path, capsys, sweep
):
    out = tmp_path / sweep
    argv = ["--json", "patch", str(tiny_checkpoint), "--sites", sweep, "--out", str(out)]
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


def test_patch_command_refuses_bad_input(tiny_checkpoint, tmp_path, capsys):
    assert main(["patch", str(tmp_path / "nope"), "--sites", "resid", "--out", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
    argv = ["patch", str(tiny_checkpoint), "--sites", "resid", "--out", str(tmp_path), "--n", "1"]
    assert main(argv) == 2
