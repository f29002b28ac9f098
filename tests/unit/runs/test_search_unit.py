"""`mesainterp search` as a resumable unit: refused without --resume, reused with it,
refused when the config differs."""

from __future__ import annotations

import json

from mesainterp.cli.main import main


def _config(checkpoint, top_n):
    return (
        f'[model]\ncheckpoint = "{checkpoint}"\n\n[search]\nmethod = "eap"\ntop_n = {top_n}\n'
        "n_examples = 8\n\n[faithfulness]\ncurve_k = [1, 5]\nn_boot = 20\n"
    )


def test_search_resumes_and_refuses_changes(tiny_checkpoint, tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text(_config(tiny_checkpoint, 10))
    out = tmp_path / "out"
    argv = ["--json", "--no-progress", "search", str(config), "--out", str(out), "--no-report"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # One unit finds the circuit, then one per faithfulness ablation.
    n_ablations = len({row["ablation"] for row in first["faithfulness"]})
    assert first["units_computed"] == first["units_total"] == 1 + n_ablations
    circuit = (out / "circuit.json").read_text()
    faithfulness = (out / "faithfulness.csv").read_text()

    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err

    (out / "circuit.json").unlink()  # as if killed before the outputs were written
    assert main([*argv, "--resume"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["units_computed"], again["units_reused"]) == (0, 1 + n_ablations)
    circuit_again = json.loads((out / "circuit.json").read_text())
    original = json.loads(circuit)
    # Only the creation time in the provenance may differ.
    for c in (circuit_again, original):
        c["provenance"].pop("created_utc")
    assert circuit_again == original
    assert (out / "faithfulness.csv").read_text() == faithfulness

    # Killed with one ablation's rows missing: only that unit is recomputed.
    next(p for p in out.rglob("faithfulness-mean-*.safetensors")).unlink()
    assert main([*argv, "--resume"]) == 0
    third = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (third["units_computed"], third["units_reused"]) == (1, n_ablations)
    assert (out / "faithfulness.csv").read_text() == faithfulness

    config.write_text(_config(tiny_checkpoint, 12))
    assert main([*argv, "--resume"]) == 2
    assert "top_n" in capsys.readouterr().err


def test_staged_search_equals_the_one_process_search(tiny_checkpoint, tmp_path):
    """The units (circuit, then each ablation apart) assemble to `run_search`'s outcome."""
    from mesainterp.discovery.config import load_config
    from mesainterp.discovery.search import prepare, run_search
    from mesainterp.runs.executor import execute
    from mesainterp.runs.search_job import (
        SearchJob,
        SearchWorker,
        faithfulness_plan,
        outcome_from_units,
        search_plan,
    )
    from mesainterp.runs.state import open_run

    config = tmp_path / "search.toml"
    config.write_text(
        _config(tiny_checkpoint, 10).replace(
            "[faithfulness]\n", '[faithfulness]\nablations = ["resample", "mean", "zero"]\n'
        )
    )
    plan = prepare(load_config(config))
    whole = run_search(plan)
    state = open_run(tmp_path / "out", identity={"test": 1}, resume=False)
    job = SearchJob(config_path=str(config), command=("test",))
    stage1 = search_plan(state.identity)
    execute(job.worker_spec(), stage1, state, local_worker=SearchWorker.from_plan(plan, ["test"]))
    stage2 = faithfulness_plan(
        state.identity, state.load_unit(stage1.keys[0])[1], ["resample", "mean", "zero"]
    )
    assert len(stage2) == 3
    execute(job.worker_spec(), stage2, state, local_worker=SearchWorker(
        config_path=str(config), command=["test"]))  # fmt: skip
    staged = outcome_from_units(state, stage1.keys[0], stage2)
    assert staged.rows == whole.rows
    assert staged.ranking == whole.ranking
    assert staged.circuit.edges == whole.circuit.edges
    assert staged.circuit.faithfulness == whole.circuit.faithfulness
