"""`mesainterp search` under a budget: a partial circuit marked as such, and `--resume`
(with any budget) continuing it to the uninterrupted run's circuit and tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesainterp.cli.main import main
from mesainterp.discovery import load_config
from mesainterp.errors import ConfigError


def _config(checkpoint, search: str) -> str:
    return (
        f'[model]\ncheckpoint = "{checkpoint}"\n\n[search]\n{search}\nn_examples = 8\n\n'
        "[faithfulness]\ncurve_k = [1, 5]\nn_boot = 20\n"
    )


def _search(capsys, argv: list[str]) -> dict:
    assert main(["--json", "--no-progress", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _circuit(out: Path) -> dict:
    circuit = json.loads((out / "circuit.json").read_text())
    for key in ("created_utc", "command"):  # the command names the output folder and flags
        circuit["provenance"].pop(key)
    return circuit


ACDC = 'method = "acdc"\nthreshold = 0.01'
EAP = 'method = "eap"\ntop_n = 10\nscore_chunk = 2'


@pytest.mark.parametrize(("search", "flags"), [(ACDC, ["--max-runs", "7"]),
                                               (EAP, ["--max-runs", "1"])], ids=["acdc", "eap"])  # fmt: skip
def test_a_budget_stops_with_a_partial_circuit_and_resume_finishes_it(
    tiny_checkpoint, tmp_path, capsys, search, flags
):
    config = tmp_path / "search.toml"
    config.write_text(_config(tiny_checkpoint, search))
    whole = tmp_path / "whole"
    reference = _search(capsys, ["search", str(config), "--out", str(whole), "--no-report"])
    assert reference["status"] == "complete"
    assert _circuit(whole)["params"]["status"] == "complete"

    out = tmp_path / "out"
    argv = ["search", str(config), "--out", str(out), "--no-report"]
    first = _search(capsys, [*argv, *flags])
    assert first["status"] == "partial" and first["faithfulness"] == []
    partial = _circuit(out)
    assert partial["params"]["status"] == partial["provenance"]["status"] == "partial"
    assert partial["params"]["budget"]["max_runs"] == int(flags[1])
    assert not (out / "faithfulness.csv").exists()
    manifest = json.loads((out / "_run" / "manifest.json").read_text())
    assert manifest["complete"] is False
    if search == EAP:  # the circuit of the examples scored so far
        assert partial["params"]["n_examples"] == 2
    else:
        assert partial["params"]["n_undecided"] > 0

    runs = 1
    while True:  # each call continues with a fresh budget
        again = _search(capsys, [*argv, "--resume", *flags])
        runs += 1
        assert runs < 60, "the resumed search makes no progress"
        if again["status"] == "complete":
            break
    assert _circuit(out) == _circuit(whole)
    assert (out / "faithfulness.csv").read_text() == (whole / "faithfulness.csv").read_text()
    assert json.loads((out / "_run" / "manifest.json").read_text())["complete"] is True


def test_the_config_budget_is_used_and_a_flag_replaces_it(tiny_checkpoint, tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text(_config(tiny_checkpoint, f"{ACDC}\nmax_runs = 3"))
    out = tmp_path / "out"
    argv = ["search", str(config), "--out", str(out), "--no-report"]
    _search(capsys, argv)
    assert _circuit(out)["params"]["budget"] == {"max_runs": 3, "max_seconds": None}
    # A resumed run may change the budget (it bounds one call, not the search).
    done = _search(capsys, [*argv, "--resume", "--max-runs", "100000"])
    assert done["status"] == "complete"


@pytest.mark.parametrize(
    ("line", "field"),
    [("max_runs = 0", "search.max_runs"), ("max_runs = 1.5", "search.max_runs"),
     ("max_seconds = 0", "search.max_seconds"), ('max_seconds = "1"', "search.max_seconds"),
     ("max_second = 1", "search.max_second")],
)  # fmt: skip
def test_bad_budget_fields_name_the_field(tmp_path, line, field):
    path = tmp_path / "search.toml"
    path.write_text(f'[model]\nzoo = "x"\n[search]\ntop_n = 3\n{line}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == field


def test_budget_fields_round_trip_and_stay_out_of_the_identity(tmp_path):
    path = tmp_path / "search.toml"
    path.write_text('[model]\nzoo = "x"\n[search]\ntop_n = 3\nmax_runs = 4\nmax_seconds = 60\n')
    config = load_config(path)
    assert (config.max_runs, config.max_seconds) == (4, 60.0)
    assert config.to_dict()["search"]["max_seconds"] == 60.0
    assert "max_runs" not in config.identity_dict()["search"]
    assert config.budget.max_runs == 4


def test_bad_budget_flags_exit_with_one_line(tiny_checkpoint, tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text(_config(tiny_checkpoint, ACDC))
    out = tmp_path / "out"
    assert main(["search", str(config), "--out", str(out), "--max-runs", "0"]) == 2
    assert "argument --max-runs: 0 is out of range" in capsys.readouterr().err
    assert not out.exists()
