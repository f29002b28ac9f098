"""`mesainterp search` as a resumable unit: refused without --resume, reused with it,
refused when the config differs."""

from __future__ import annotations

import json

import pytest

from mesainterp.cli.main import main


def _config(checkpoint, top_n, search=""):
    return (
        f'[model]\ncheckpoint = "{checkpoint}"\n\n[search]\nmethod = "eap"\ntop_n = {top_n}\n'
        f"n_examples = 8\n{search}\n[faithfulness]\ncurve_k = [1, 5]\nn_boot = 20\n"
    )


def _first_search(tmp_path, capsys, text):
    """Run a search from config `text`; (config path, out dir, argv, its JSON line)."""
    config = tmp_path / "search.toml"
    config.write_text(text)
    out = tmp_path / "out"
    argv = ["--json", "--no-progress", "search", str(config), "--out", str(out), "--no-report"]
    assert main(argv) == 0
    return config, out, argv, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_search_resumes_and_refuses_changes(tiny_checkpoint, tmp_path, capsys):
    config, out, argv, first = _first_search(tmp_path, capsys, _config(tiny_checkpoint, 10))
    # One unit scores all the examples, then one per faithfulness ablation.
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


@pytest.mark.parametrize(
    ("search", "n_chunks"),
    [("", 1), ("score_chunk = 3\n", 3), ('method = "acdc"\nthreshold = 0.01\n', 1)],
    ids=["eap", "eap-3-chunks", "acdc"],
)
def test_staged_search_equals_the_one_process_search(tiny_checkpoint, tmp_path, search, n_chunks):
    """The units (score chunks, then each ablation apart) assemble to `run_search`'s
    outcome exactly; the chunks are scored by a worker that loaded the model itself."""
    from mesainterp.discovery.config import load_config
    from mesainterp.discovery.search import prepare, run_search
    from mesainterp.runs.executor import execute
    from mesainterp.runs.search_job import (
        SearchJob,
        SearchWorker,
        faithfulness_plan,
        outcome_from_units,
        search_plan,
        stage1_result,
    )
    from mesainterp.runs.state import open_run

    config = tmp_path / "search.toml"
    text = _config(tiny_checkpoint, 10, search).replace(
        "[faithfulness]\n", '[faithfulness]\nablations = ["resample", "mean", "zero"]\n'
    )
    if "acdc" in search:
        text = text.replace('method = "eap"\ntop_n = 10\n', "")
    config.write_text(text)
    plan = prepare(load_config(config))
    whole = run_search(plan)
    state = open_run(tmp_path / "out", identity={"test": 1}, resume=False)
    job = SearchJob(config_path=str(config), command=("test",))
    stage1 = search_plan(state.identity, plan.config)
    assert len(stage1) == n_chunks
    execute(job.worker_spec(), stage1, state, local_worker=SearchWorker(
        config_path=str(config), command=["test"]))  # fmt: skip
    meta = stage1_result(state, stage1, plan, ["test"])
    stage2 = faithfulness_plan(state.identity, meta, ["resample", "mean", "zero"])
    assert len(stage2) == 3
    execute(job.worker_spec(), stage2, state, local_worker=SearchWorker.from_plan(plan, ["test"]))
    staged = outcome_from_units(state, meta, stage2)
    assert staged.rows == whole.rows
    assert staged.ranking == whole.ranking
    assert staged.circuit.edges == whole.circuit.edges
    assert staged.circuit.params == whole.circuit.params
    assert staged.circuit.faithfulness == whole.circuit.faithfulness
    # Assembled once: a second call reads the saved circuit back.
    assert stage1_result(state, stage1, plan, ["other"]) == meta


def test_chunked_search_resumes_only_the_missing_chunk(tiny_checkpoint, tmp_path, capsys):
    text = _config(tiny_checkpoint, 10, "score_chunk = 3\n")
    _, out, argv, first = _first_search(tmp_path, capsys, text)
    n_ablations = len({row["ablation"] for row in first["faithfulness"]})
    assert first["units_computed"] == first["units_total"] == 3 + n_ablations
    chunks = sorted(p.name for p in out.rglob("scores-*.safetensors"))
    assert [name.split("-")[1:3] for name in chunks] == [
        ["00000", "00003"], ["00003", "00006"], ["00006", "00008"]
    ]  # fmt: skip
    circuit = json.loads((out / "circuit.json").read_text())

    next(out.rglob("scores-00003-*.safetensors")).unlink()
    (out / "circuit.json").unlink()
    assert main([*argv, "--resume"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["units_computed"], again["units_reused"]) == (1, 2 + n_ablations)
    assert json.loads((out / "circuit.json").read_text()) == circuit


def test_chunk_keys_follow_the_run_identity():
    from mesainterp.discovery.config import SearchConfig
    from mesainterp.runs.search_job import search_plan

    config = SearchConfig(zoo="x", top_n=3, n_examples=8, score_chunk=3)
    plan = search_plan({"config": config.to_dict()}, config)
    assert [(u.payload["start"], u.payload["stop"]) for u in plan.units] == [(0, 3), (3, 6), (6, 8)]
    assert search_plan({"config": config.to_dict()}, config).keys == plan.keys
    other = SearchConfig(zoo="x", top_n=3, n_examples=8, score_chunk=3, seed=1)
    assert not set(search_plan({"config": other.to_dict()}, other).keys) & set(plan.keys)
