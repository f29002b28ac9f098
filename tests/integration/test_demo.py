"""The README's main job, at quick sizes: every step runs and one report ties them together."""

from __future__ import annotations

import json

import pytest

from mesainterp.cli.main import main
from mesainterp.report import load_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["--no-progress", "demo", "--quick", "--out", str(out)]) == 0
    return out


def test_demo_writes_one_report_over_every_step(demo_run):
    run = load_run(demo_run)
    kinds = {result.kind for result in run.results}
    assert {"patching", "probes", "circuit", "figure", "table"} <= kinds
    page = (demo_run / "report.html").read_text()
    assert "<html" in page.lower()
    for result in run.results:
        assert (demo_run / result.path).is_file(), result.path
    # The overlays: the model's path with a head's attention, and the goal decoded per layer.
    assert (demo_run / "figures" / "overlay-path-attention.svg").is_file()
    assert (demo_run / "figures" / "overlay-decoded-goal.svg").is_file()


def test_demo_records_the_command_of_every_step(demo_run):
    manifest = json.loads((demo_run / "run.json").read_text())
    steps = manifest["provenance"]["steps"]
    assert [s[1] for s in steps] == ["patch", "patch", "probe", "search"]
    assert manifest["command"] == [
        "mesainterp",
        "--no-progress",
        "demo",
        "--quick",
        "--out",
        str(demo_run),
    ]
    # Each step records the demo's command plus its name: the command that reruns it.
    demo = manifest["command"]
    probe = json.loads((demo_run / "probe-goal" / "probes.json").read_text())
    assert probe["provenance"]["command"] == [*demo, "--step", "probe-goal"]
    patch = json.loads((demo_run / "patch-resid" / "provenance.json").read_text())
    assert patch["command"] == [*demo, "--step", "patch-resid"]
    circuit = json.loads((demo_run / "circuit" / "circuit.json").read_text())
    assert circuit["provenance"]["command"] == [*demo, "--step", "circuit"]


def test_a_demo_step_reruns_alone(demo_run, tmp_path, capsys):
    out = tmp_path / "again"
    argv = [
        "--no-progress",
        "--json",
        "demo",
        "--quick",
        "--out",
        str(out),
        "--step",
        "patch-heads",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data == {"patch-heads": str(out / "patch-heads")}
    again = json.loads((out / "patch-heads" / "provenance.json").read_text())
    assert again["command"] == ["mesainterp", *argv]
    assert not (out / "report.html").exists() and not (out / "patch-resid").exists()
    before = json.loads((demo_run / "patch-heads" / "provenance.json").read_text())
    assert again["model_fingerprint"] == before["model_fingerprint"]


def test_demo_refuses_an_unknown_model(tmp_path, capsys):
    assert main(["demo", "--model", "no-such-model", "--out", str(tmp_path / "x")]) == 2
    assert "tree-path" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
