"""`mesainterp mechanism --planted` end to end, and the report's mechanism section."""

from __future__ import annotations

import json

import pytest

from mesainterp.cli.main import main
from mesainterp.report import build_report, load_run, sections_from_run
from mesainterp.report.rundir import RunDirError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("mech") / "tree"
    argv = ["mechanism", "tree-path", "--planted", "--out", str(out), "--n", "16", "--steps", "1"]
    assert main(argv) == 0
    return out


def test_cli_writes_card_tables_and_provenance(run_dir) -> None:  # type: ignore[no-untyped-def]
    for name in ("mechanism.md", "mechanism.json", "roles.csv", "dla.csv", "lens.csv", "run.json"):
        assert (run_dir / name).exists(), name
    data = json.loads((run_dir / "mechanism.json").read_text())
    assert data["provenance"]["command"][:3] == ["mesainterp", "mechanism", "tree-path"]
    assert data["model_name"].startswith("planted-chain")
    assert any(c["status"] == "supported" for c in data["claims"])


def test_cli_json_and_bad_model(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["mechanism", "no-such-model", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0]


def test_report_opens_with_the_claims(run_dir) -> None:  # type: ignore[no-untyped-def]
    sections = sections_from_run(load_run(run_dir))
    first = sections[0]
    assert first.title.startswith("Mechanism") and first.table is not None
    assert list(first.table.columns[:3]) == ["status", "kind", "text"]
    assert first.table["status"].iloc[0] == "supported"
    titles = [s.title for s in sections]
    assert titles[1] == "Compared with Brinkmann et al. 2024"
    assert "Evidence: roles.csv" in titles
    # The instance figure: one panel per supported patching claim, on the example's tree.
    assert "Where the heads that matter attend, on one tree" in titles
    data = json.loads((run_dir / "mechanism.json").read_text())
    claimed = {f"{c['query_role']}: {c['head']}" for c in data["claims"]
               if c["kind"] == "patching" and c["status"] == "supported"}  # fmt: skip
    assert set(data["instance"]["panels"]) <= claimed and data["instance"]["panels"]
    for mass in data["instance"]["panels"].values():
        assert 0.0 <= sum(mass.values()) <= 1.0 + 1e-5
    page = build_report(run_dir)
    claim = first.table["text"].iloc[0]
    assert claim.split(" (")[0] in page


def test_report_refuses_a_file_that_is_not_a_card(run_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "mechanism.json").write_text('{"format": "other"}')
    with pytest.raises(RunDirError, match="not a mechanism card"):
        sections_from_run(load_run(copy))


def test_attention_view_shows_the_heads_that_matter_with_role_labels(run_dir) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((run_dir / "mechanism.json").read_text())
    view = json.loads((run_dir / "attention.json").read_text())
    claimed = {c["head"] for c in data["claims"]
               if c["kind"] == "patching" and c["status"] == "supported"}  # fmt: skip
    assert set(view["head_names"]) == claimed
    tokens = view["tokens"]
    assert len(view["attention"][0]) == len(tokens) == len(view["attention"][0][0])
    # Roles label the positions, not bare indices: the goal token and ":" carry theirs.
    assert any(t.startswith("goal ") for t in tokens)
    assert any(t.startswith("edge 0 parent ") for t in tokens)
    titles = [s.title for s in sections_from_run(load_run(run_dir))]
    assert "Attention of the heads that matter, on the same example" in titles
