"""Ray workers rebuild a prompt-file run from the job alone: same table as in-process."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mesainterp.cli.main import main
from mesainterp.patching import load_result
from mesainterp.runs.executor import start_local_cluster
from tests.unit.runs.test_prompt_data_cli import ROLE_ARG, hf_dir, pairs_csv

ray = pytest.importorskip("ray")

__all__ = ["hf_dir", "pairs_csv"]


@pytest.fixture(scope="module")
def cluster():
    start_local_cluster(2)
    yield
    ray.shutdown()


def test_ray_patch_on_a_data_file_equals_inprocess(cluster, hf_dir, pairs_csv, tmp_path, capsys):
    def patch(out, *extra):
        argv = ["--json", "--no-progress", "patch", str(hf_dir), "--data", str(pairs_csv),
                "--roles", ROLE_ARG, "--sites", "resid", "--out", str(out), "--n-boot", "50",
                "--chunk-size", "4", *extra]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    local = patch(tmp_path / "local")
    remote = patch(tmp_path / "ray", "--executor", "ray", "--workers", "2")
    assert remote["executor"] == "ray" and remote["units_computed"] == local["units_total"] > 1
    pd.testing.assert_frame_equal(
        load_result(tmp_path / "ray").table, load_result(tmp_path / "local").table, check_exact=True
    )
