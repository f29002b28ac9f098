"""The probe pipeline as a library call: what the `probe` command runs, without the CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from mesainterp.errors import ConfigError
from mesainterp.runs.probe_job import ProbeJob
from mesainterp.runs.probe_pipeline import CausalOptions, run_probe_pipeline
from mesainterp.sites import Site


@pytest.mark.filterwarnings("ignore")
def test_pipeline_writes_the_tables_and_records_the_callers_command(tiny_checkpoint, tmp_path):
    job = ProbeJob(model=str(tiny_checkpoint), target="goal", positions=(3, 9),
                   n_examples=60, batch_size=60, folds=2)  # fmt: skip
    run = run_probe_pipeline(job, tmp_path / "p", chunk_size=2, command=["my-script", "--x"])
    assert list(run.table["pos"]) == [3, 9, 3, 9]
    assert list(run.table["hook"])[:2] == [Site(kind="resid_post", layer=0, pos=3).hook_name] * 2
    pd.testing.assert_frame_equal(pd.read_parquet(run.files["parquet"]), run.table)
    assert {"figure", "heatmap", "curves"} <= set(run.files)
    assert all(p.is_file() for p in run.files.values())
    assert run.provenance["command"] == ["my-script", "--x"]
    assert run.causal is None and run.causal_note == "skipped (not requested)"


def test_bad_positions_are_refused_before_any_work(tiny_checkpoint, tmp_path):
    job = ProbeJob(model=str(tiny_checkpoint), target="goal", positions=(3, 999))
    with pytest.raises(ConfigError, match=r"^positions: \[999\] outside 0\.\."):
        run_probe_pipeline(job, tmp_path / "p")
    assert not (tmp_path / "p").exists()
    with pytest.raises(ConfigError, match=r"^target: the task has no label 'nope'"):
        run_probe_pipeline(ProbeJob(model=str(tiny_checkpoint), target="nope", positions=()),
                           tmp_path / "p")  # fmt: skip
    with pytest.raises(ConfigError, match=r"^pairs: expected an int >= 2"):
        CausalOptions(pairs=1)
