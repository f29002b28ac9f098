"""Sharded probe sweeps match the single-pass `run_probes` (the oracle)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mesainterp.cli.main import main
from mesainterp.probes.controls import run_probes
from mesainterp.runs.executor import execute
from mesainterp.runs.probe_job import ProbeJob, ProbeWorker, assemble_probe_table, probe_plan
from mesainterp.runs.state import open_run

SE_COLUMNS = ["se", "random_init_se", "shuffled_se"]


def _compare(sharded: pd.DataFrame, oracle: pd.DataFrame) -> None:
    # Standard errors come from a batched reduction over sites: last-bit differences only.
    exact = [c for c in oracle.columns if c not in SE_COLUMNS]
    pd.testing.assert_frame_equal(sharded[exact], oracle[exact], check_exact=True)
    np.testing.assert_allclose(sharded[SE_COLUMNS], oracle[SE_COLUMNS], rtol=1e-12, atol=1e-15)


def test_probe_units_match_the_single_pass(tiny_checkpoint, tmp_path):
    job = ProbeJob(model=str(tiny_checkpoint), target="goal", positions=(3, 9, 15, 21),
                   n_examples=120, batch_size=60, folds=3)  # fmt: skip
    worker = ProbeWorker(**job.to_dict())
    plan = probe_plan(job, worker.sites, chunk_size=3)
    assert len(plan) == 3
    state = open_run(tmp_path, identity={"job": job.to_dict()}, resume=False)
    execute(job.worker_spec(), plan, state, local_worker=worker, progress=False)
    sharded, _ = assemble_probe_table(plan, state)
    data = worker.collect(worker.checkpoint.model, worker.sites)
    twin = worker.collect(worker.twin, worker.sites)
    _compare(sharded, run_probes(data, job.spec, random_init=twin).table)


@pytest.mark.filterwarnings("ignore")
def test_probe_cli_resumes_missing_units(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "probe"
    argv = ["--json", "--no-progress", "probe", str(tiny_checkpoint), "--target", "goal",
            "--out", str(out), "--positions", "3,9,15", "--n-examples", "120",
            "--batch-size", "60", "--folds", "3", "--no-causal", "--chunk-size", "2"]  # fmt: skip
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    reference = pd.read_parquet(out / "probes.parquet")
    units = sorted((out / "_run" / "units").glob("probes-*.safetensors"))
    assert first["units_computed"] == first["units_total"] == len(units) == 3
    units[1].unlink()
    assert main([*argv, "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (resumed["units_computed"], resumed["units_reused"]) == (1, 2)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "probes.parquet"), reference)
