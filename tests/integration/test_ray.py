"""The Ray executor on a local two-worker cluster gives exactly the in-process result."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mesainterp.cli.main import main
from mesainterp.patching import load_result
from mesainterp.runs.executor import start_local_cluster

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    start_local_cluster(2)
    yield
    ray.shutdown()


def _patch(tiny_checkpoint, out, *extra):
    argv = ["--json", "--no-progress", "patch", str(tiny_checkpoint), "--sites", "heads-by-pos",
            "--out", str(out), "--n", "6", "--n-boot", "50", "--chunk-size", "8", *extra]  # fmt: skip
    return main(argv)


def test_ray_sweep_equals_inprocess_and_resumes(cluster, tiny_checkpoint, tmp_path, capsys):
    assert _patch(tiny_checkpoint, tmp_path / "local") == 0
    local = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert _patch(tiny_checkpoint, tmp_path / "ray", "--executor", "ray", "--workers", "2") == 0
    remote = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert remote["executor"] == "ray" and remote["units_computed"] == local["units_total"] > 2
    pd.testing.assert_frame_equal(
        load_result(tmp_path / "ray").table, load_result(tmp_path / "local").table, check_exact=True
    )
    # A Ray run resumed after losing a unit recomputes just that unit.
    next((tmp_path / "ray" / "_run" / "units").glob("*.safetensors")).unlink()
    assert _patch(tiny_checkpoint, tmp_path / "ray", "--executor", "ray", "--resume") == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert resumed["units_computed"] == 1
    pd.testing.assert_frame_equal(
        load_result(tmp_path / "ray").table, load_result(tmp_path / "local").table, check_exact=True
    )


def test_ray_address_needs_the_ray_executor(tiny_checkpoint, tmp_path, capsys):
    assert _patch(tiny_checkpoint, tmp_path / "x", "--ray-address", "auto") == 2
    assert "--ray-address" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ray_search_spreads_the_chunks_and_ablations_and_equals_inprocess(
    cluster, tiny_checkpoint, tmp_path, capsys
):
    config = tmp_path / "search.toml"
    config.write_text(
        f'[model]\ncheckpoint = "{tiny_checkpoint}"\n\n[search]\nmethod = "eap"\n'
        'top_n = 10\nn_examples = 8\nscore_chunk = 3\n\n[faithfulness]\nablations = ["resample", '
        '"mean", "zero"]\ncurve_k = [1, 5]\nn_boot = 20\n'
    )
    runs = {}
    threads = torch.get_num_threads()
    for name, extra in (("local", []), ("ray", ["--executor", "ray", "--workers", "2"])):
        argv = ["--json", "--no-progress", "search", str(config), "--out", str(tmp_path / name),
                "--no-report", *extra]  # fmt: skip
        # At the default thread count: the actors take the driver's (the attribution
        # backward's float sums depend on it).
        assert main(argv) == 0
        assert torch.get_num_threads() == threads
        runs[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Three chunks of examples scored, then one unit per ablation, all on two workers.
    assert runs["ray"]["units_computed"] == runs["local"]["units_total"] == 6
    assert runs["ray"]["executor"] == "ray"
    local, remote = (json.loads((tmp_path / n / "circuit.json").read_text()) for n in runs)
    assert remote["edges"] == local["edges"]  # the scores too, bit for bit
    assert remote["faithfulness"] == local["faithfulness"]
    assert (tmp_path / "ray" / "faithfulness.csv").read_text() == (
        tmp_path / "local" / "faithfulness.csv"
    ).read_text()
