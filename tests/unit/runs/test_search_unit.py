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
    assert first["units_computed"] == 1
    circuit = (out / "circuit.json").read_text()
    faithfulness = (out / "faithfulness.csv").read_text()

    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err

    (out / "circuit.json").unlink()  # as if killed before the outputs were written
    assert main([*argv, "--resume"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["units_computed"], again["units_reused"]) == (0, 1)
    circuit_again = json.loads((out / "circuit.json").read_text())
    original = json.loads(circuit)
    # Only the creation time in the provenance may differ.
    for c in (circuit_again, original):
        c["provenance"].pop("created_utc")
    assert circuit_again == original
    assert (out / "faithfulness.csv").read_text() == faithfulness

    config.write_text(_config(tiny_checkpoint, 12))
    assert main([*argv, "--resume"]) == 2
    assert "top_n" in capsys.readouterr().err
