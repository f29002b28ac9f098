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
    assert manifest["command"][:2] == ["mesainterp", "demo"]


def test_demo_refuses_an_unknown_model(tmp_path, capsys):
    assert main(["demo", "--model", "no-such-model", "--out", str(tmp_path / "x")]) == 2
    assert "tree-path" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
