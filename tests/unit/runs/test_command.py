"""The provenance `command` is the argv the user ran, set once at the command line and
passed down; library code records what it is given and never reads `sys.argv`."""

from __future__ import annotations

import json
import sys

import pytest

from mesainterp.cli.main import main, run_subcommand
from mesainterp.errors import ConfigError
from mesainterp.runs.options import RunOptions
from mesainterp.runs.patch_job import PatchJob
from mesainterp.runs.patch_run import run_patch


def _patch_argv(checkpoint, out):
    return ["patch", str(checkpoint), "--sites", "heads", "--out", str(out), "--n", "4",
            "--n-boot", "20"]  # fmt: skip


def _recorded(out):
    return json.loads((out / "provenance.json").read_text())["command"]


def test_the_command_line_records_the_argv_the_user_ran(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["something-else", "entirely"])
    argv = ["--no-progress", *_patch_argv(tiny_checkpoint, tmp_path / "a")]
    assert main(argv) == 0
    assert _recorded(tmp_path / "a") == ["mesainterp", *argv]


def test_a_composed_command_records_its_own_command_for_each_step(tiny_checkpoint, tmp_path):
    step = ["mesainterp", "demo", "--out", "runs/demo", "--step", "patch-heads"]
    run_subcommand(_patch_argv(tiny_checkpoint, tmp_path / "b"), command=step)
    assert _recorded(tmp_path / "b") == step
    run_subcommand(_patch_argv(tiny_checkpoint, tmp_path / "c"))
    assert _recorded(tmp_path / "c") == [
        "mesainterp",
        *_patch_argv(tiny_checkpoint, tmp_path / "c"),
    ]


def test_the_library_records_only_the_command_it_is_given(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mesainterp", "not", "this"])
    job = PatchJob(model=str(tiny_checkpoint), sweep="heads", n=4)
    done = run_patch(job, tmp_path / "d", n_boot=20)
    assert _recorded(tmp_path / "d") is None and done.result.provenance["command"] is None
    run_patch(job, tmp_path / "e", n_boot=20, command=["notebook", "cell 3"])
    assert _recorded(tmp_path / "e") == ["notebook", "cell 3"]


def test_the_search_run_records_the_argv(tiny_checkpoint, tmp_path):
    config = tmp_path / "search.toml"
    config.write_text(
        f'[model]\ncheckpoint = "{tiny_checkpoint}"\n\n[search]\nmethod = "eap"\ntop_n = 5\n'
        'n_examples = 4\n\n[faithfulness]\nablations = ["mean"]\ncurve_k = [1]\nn_boot = 10\n'
    )
    argv = ["--no-progress", "search", str(config), "--out", str(tmp_path / "s"), "--no-report"]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "s" / "run.json").read_text())
    circuit = json.loads((tmp_path / "s" / "circuit.json").read_text())
    assert manifest["command"] == circuit["provenance"]["command"] == ["mesainterp", *argv]
    assert not (tmp_path / "s" / "report.html").exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"executor": "dask"}, "executor"),
        ({"workers": 0}, "workers"),
        ({"workers": True}, "workers"),
        ({"address": "auto"}, "address"),
    ],
)
def test_bad_run_options_name_the_field(options, field):
    with pytest.raises(ConfigError) as info:
        RunOptions(**options)
    assert info.value.field == field
