"""Sharded patching equals the single-pass sweep (the existing front ends are the oracle)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mesainterp.cli.main import main
from mesainterp.patching import load_result
from mesainterp.patching.api import patch_pair, summarise
from mesainterp.patching.path import Receiver, path_patch
from mesainterp.runs.executor import execute
from mesainterp.runs.patch_job import (
    PatchJob,
    PatchWorker,
    assemble_sweep,
    build_patch_worker,
    patch_plan,
)
from mesainterp.runs.state import open_run


@pytest.mark.parametrize(
    ("sweep", "ablation", "method"),
    [("mlp", "resample", "auto"), ("heads", "mean", "hooks"), ("path", "resample", "auto")],
)
def test_units_assemble_to_the_single_pass_result(
    tiny_checkpoint, tmp_path, sweep, ablation, method
):
    job = PatchJob(model=str(tiny_checkpoint), sweep=sweep, n=6, ablation=ablation, method=method)
    worker = build_patch_worker(**job.to_dict())
    plan = patch_plan(job, worker.sites, chunk_size=3)
    assert len(plan) > 1
    state = open_run(tmp_path, identity={"job": job.to_dict()}, resume=False)
    stats = execute(job.worker_spec(), plan, state, local_worker=worker, progress=False)
    assert (stats.computed, stats.reused) == (len(plan), 0)
    sharded = summarise(assemble_sweep(plan, state, worker.sites, job.spec), n_boot=50)

    common = dict(
        clean=worker.pair.clean.inputs, corrupted=worker.pair.corrupted.inputs,
        metric=worker.metric, batch=worker.pair.clean, ablation=ablation, n_boot=50,
    )  # fmt: skip
    if sweep == "path":
        oracle = path_patch(worker.model, worker.sites, [Receiver(kind="logits")], **common)
    else:
        oracle = patch_pair(worker.model, worker.pair, worker.sites, metric=worker.metric,
                            ablation=ablation, method=method, n_boot=50)  # fmt: skip
    pd.testing.assert_frame_equal(sharded.table, oracle.table, check_exact=True)
    assert torch.equal(sharded.patched, oracle.patched)

    # A second pass over the same state computes nothing.
    again = execute(job.worker_spec(), plan, state, local_worker=worker, progress=False)
    assert (again.computed, again.reused) == (0, len(plan))


def _cli(args, capsys):
    code = main(["--json", "--no-progress", *args])
    captured = capsys.readouterr()
    return code, captured


def test_cli_refuses_then_resumes_only_missing_units(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["patch", str(tiny_checkpoint), "--sites", "mlp", "--out", str(out),
            "--n", "6", "--n-boot", "50", "--chunk-size", "4"]  # fmt: skip
    code, cap = _cli(argv, capsys)
    assert code == 0, cap.err
    first = json.loads(cap.out.strip().splitlines()[-1])
    assert first["units_computed"] == first["units_total"] > 1
    reference = load_result(out).table

    code, cap = _cli(argv, capsys)
    assert code == 2 and "not empty" in cap.err and "--resume" in cap.err

    # Lose two units, as if the run had died before them.
    units = sorted((out / "_run" / "units").glob("*.safetensors"))
    for path in units[:2]:
        path.unlink()
    code, cap = _cli([*argv, "--resume"], capsys)
    assert code == 0, cap.err
    resumed = json.loads(cap.out.strip().splitlines()[-1])
    assert (resumed["units_computed"], resumed["units_reused"]) == (2, len(units) - 2)
    pd.testing.assert_frame_equal(load_result(out).table, reference, check_exact=True)

    code, cap = _cli([*argv[:-2], "--n-boot", "60", "--resume"], capsys)
    assert code == 2 and "n_boot" in cap.err


def test_the_worker_spec_builds_the_worker_a_ray_actor_gets(tiny_checkpoint):
    """A Ray actor builds its worker from the JSON spec alone (no model passed)."""
    from mesainterp.runs.executor import build_worker

    job = PatchJob(model=str(tiny_checkpoint), sweep="heads", n=4)
    built = build_worker(job.worker_spec())
    assert isinstance(built, PatchWorker) and built.job == job
    assert built.sites == build_patch_worker(**job.to_dict()).sites
