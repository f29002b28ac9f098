"""Run directories, self-contained reports, static figure folders, the CLI."""

from __future__ import annotations

import json
import re

import pytest

from mesainterp.cli.main import main
from mesainterp.errors import MesaInterpError
from mesainterp.report import (
    RunDirError,
    Section,
    build_report,
    load_run,
    sections_from_run,
    write_report,
    write_run,
)
from mesainterp.viz import tree_figure
from tests.unit.report._example import write_example_run

SCRIPT_BODY = re.compile(r"<script>.*?</script>", re.DOTALL)
REMOTE_REF = re.compile(
    r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:|//|ftp:)""", re.IGNORECASE
)


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    return write_example_run(tmp_path_factory.mktemp("run") / "example")


@pytest.fixture(scope="module")
def interactive_page(example_run) -> str:
    return build_report(example_run)


def test_manifest_round_trips(tmp_path):
    write_run(
        tmp_path,
        command=["mesainterp", "x"],
        provenance={"seed": 1},
        results=[{"name": "t", "kind": "table", "path": "t.csv", "caption": "c"}],
    )
    run = load_run(tmp_path)
    assert run.command == ["mesainterp", "x"] and run.provenance == {"seed": 1}
    assert run.results[0].options == {"caption": "c"}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "no run.json"),
        ("{not json", "not valid JSON"),
        ('{"schema": "other/1"}', "schema"),
        (
            '{"schema": "mesainterp.run/1", "results": [{"name": "a", "kind": "movie", "path": "a"}]}',
            "unknown kind",
        ),
        (
            '{"schema": "mesainterp.run/1", "results": [{"name": "a", "kind": "table", "path": "../a.csv"}]}',
            "inside the run directory",
        ),
        (
            '{"schema": "mesainterp.run/1", "results": [{"name": "a", "kind": "table"}]}',
            "missing 'path'",
        ),
    ],
)
def test_bad_run_directories_are_refused_by_name(tmp_path, manifest, message):
    if manifest is not None:
        (tmp_path / "run.json").write_text(manifest)
    with pytest.raises(RunDirError, match=re.escape(message)):
        load_run(tmp_path)


def test_missing_result_file_is_named(tmp_path):
    write_run(
        tmp_path,
        command=[],
        provenance={},
        results=[{"name": "t", "kind": "table", "path": "t.csv"}],
    )
    with pytest.raises(
        RunDirError, match=re.escape("t.csv: file named in run.json does not exist")
    ):
        build_report(tmp_path)
    with pytest.raises(RunDirError, match="no such directory"):
        build_report(tmp_path / "missing")


def test_every_result_kind_becomes_sections(example_run):
    sections = sections_from_run(load_run(example_run))
    names = [s.name for s in sections]
    assert len(names) == len(set(names))
    assert sum(s.plotly is not None for s in sections) >= 6
    assert sum(s.view is not None for s in sections) == 1
    assert sum(s.image is not None for s in sections) == 1
    assert any(s.table is not None for s in sections)


def _markup(page: str) -> str:
    """The page without script bodies (library JS mentions URLs in strings it
    never loads here; the browser test checks what actually loads)."""
    return SCRIPT_BODY.sub("<script></script>", page)


def test_page_is_self_contained(interactive_page):
    assert not REMOTE_REF.search(_markup(interactive_page))
    assert "<script src" not in interactive_page and "<link" not in interactive_page
    markup = _markup(interactive_page)
    assert "cdn.plot.ly" not in markup and "unpkg.com" not in interactive_page
    assert "sourceMappingURL" not in interactive_page and "<!--" not in interactive_page
    assert interactive_page.count("var CircuitsVis") == 1  # circuitsvis bundle inlined once
    assert interactive_page.count("plotly.js v") <= 2 and "Plotly.newPlot" in interactive_page
    assert "default-src 'none'" in interactive_page


def test_page_escapes_every_string_from_the_run(interactive_page):
    assert "<title>Example run &lt;synthetic numbers&gt;</title>" in interactive_page
    assert "<script>window.__pwned" not in interactive_page
    assert 'onerror="window.__pwned' not in interactive_page
    # The provenance block is there, escaped, with the command.
    assert 'id="provenance"' in interactive_page and "&quot;--model&quot;" in interactive_page


def test_static_page_has_no_plotly_and_inline_svg(example_run):
    page = build_report(example_run, interactive=False)
    assert "Plotly.newPlot" not in page and "plotly.js" not in page
    assert page.count("<svg") >= 6
    assert not REMOTE_REF.search(_markup(page))
    assert len(page) < len(build_report(example_run)) / 3


def test_sections_without_a_run(tmp_path):
    fig = tree_figure([(0, 1)], root=0)
    page = build_report(
        [Section(title="Only a tree", static=fig)], provenance={"seed": 3}, interactive=True
    )
    assert "Only a tree" in page and "<svg" in page and "Plotly" not in page
    with pytest.raises(MesaInterpError, match="nothing to show"):
        Section(title="empty")
    with pytest.raises(MesaInterpError, match="unique"):
        build_report([Section(title="a", static=fig), Section(title="a", static=fig)])


def test_write_report_writes_page_and_figure_folder(example_run, tmp_path):
    page, figures = write_report(
        example_run, out=tmp_path / "r.html", figures_dir=tmp_path / "figs", formats=("svg", "pdf")
    )
    assert page.read_text().startswith("<!DOCTYPE html>")
    suffixes = {f.suffix for f in figures}
    assert suffixes == {".svg", ".pdf"}
    assert all(f.parent == tmp_path / "figs" and f.stat().st_size > 500 for f in figures)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_report_bad_run_dir_is_one_line(tmp_path, capsys):
    code, _, err = _cli(capsys, "report", str(tmp_path / "nope"))
    assert code == 2
    assert err.strip().splitlines() == [
        f"mesainterp report: error: {tmp_path / 'nope'}: not a run directory (no such directory)"
    ]
    code, _, err = _cli(capsys, "report", str(tmp_path), "--formats", "gif")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_cli_report_builds_page_and_figures(example_run, capsys):
    code, out, err = _cli(
        capsys, "--json", "report", str(example_run), "--static", "--formats", "png"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["report"] == str(example_run / "report.html")
    assert all(f.endswith((".png", ".svg")) for f in data["figures"])
    assert (example_run / "figures").is_dir()
