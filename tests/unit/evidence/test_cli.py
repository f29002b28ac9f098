"""`mesainterp evidence`: arguments checked before any work, nothing written on bad
input, and a run the report can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesainterp.cli.main import main
from mesainterp.evidence.planted import planted_gd_config, planted_gd_model
from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.report.rundir import load_run
from mesainterp.report.sections import sections_from_run
from mesainterp.tasks import get_task


@pytest.fixture
def icl_checkpoint(tmp_path: Path) -> Path:
    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    target = tmp_path / "planted"
    save_checkpoint(
        planted_gd_model(task), target, config=planted_gd_config(task), task=task.config_dict()
    )
    return target


@pytest.fixture
def tree_checkpoint(tmp_path: Path) -> Path:
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    config = ModelConfig(
        n_layers=1, d_model=8, n_heads=1, d_head=8, d_mlp=8,
        d_vocab=task.d_vocab, n_ctx=task.seq_len,
    )  # fmt: skip
    target = tmp_path / "tree"
    save_checkpoint(build_model(config), target, config=config, task=task.config_dict())
    return target


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse refusals
        return int(stop.code or 0)


def test_evidence_writes_scorecard_and_a_report_readable_run(icl_checkpoint, tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["--no-progress", "evidence", str(icl_checkpoint), "--out", str(out)]
    assert _exit([*argv, "--n", "40", "--pairs", "4", "--seed", "1"]) == 0
    card = json.loads((out / "scorecard.json").read_text())
    assert (
        card["schema_version"] == 2
        and card["battery_version"] == 2
        and card["provenance"]["seed"] == 1
    )
    assert card["provenance"]["model_fingerprint"].startswith("sha256:")
    assert card["config"]["n_examples"] == 40
    assert {t["test"] for t in card["tests"]} >= {"algorithmic_match", "goal_representation"}
    assert (out / "scorecard.csv").is_file()
    run = load_run(out)
    (section,) = sections_from_run(run)
    assert section.table is not None and "verdict" in section.table.columns


@pytest.mark.parametrize(
    "extra",
    [
        ["--tests", "telepathy"],
        ["--n", "5"],
        ["--random-init", "--planted"],
    ],
)
def test_bad_arguments_write_nothing(tree_checkpoint, tmp_path, extra) -> None:
    out = tmp_path / "out"
    assert _exit(["evidence", str(tree_checkpoint), "--out", str(out), *extra]) == 2
    assert not out.exists()


def _tiny_maze_checkpoint(tmp_path: Path) -> Path:
    task = get_task("maze", grid_n=2)
    config = ModelConfig(
        n_layers=1, d_model=8, n_heads=1, d_head=8, d_mlp=8,
        d_vocab=task.d_vocab, n_ctx=task.seq_len,
    )  # fmt: skip
    ckpt = tmp_path / "maze"
    save_checkpoint(build_model(config), ckpt, config=config, task=task.config_dict())
    return ckpt


def test_planted_scores_the_tasks_planted_model(tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["evidence", str(_tiny_maze_checkpoint(tmp_path)), "--out", str(out), "--planted",
            "--tests", "goal_retargeting", "--n", "60", "--pairs", "4", "--no-progress"]  # fmt: skip
    assert _exit(argv) == 0
    card = json.loads((out / "scorecard.json").read_text())
    assert card["model_name"] == "planted-flood (maze)"


def test_planted_needs_a_task_with_a_planted_model(tmp_path, monkeypatch) -> None:
    # Every shipped task has one; a task without (here: maze, taken out) is refused.
    from mesainterp.evidence import planted_registry

    monkeypatch.delitem(planted_registry.PLANTED, "maze")
    out = tmp_path / "out"
    assert _exit(["evidence", str(_tiny_maze_checkpoint(tmp_path)), "--out", str(out),
                  "--planted"]) == 2  # fmt: skip
    assert not out.exists()


def test_unknown_model_and_busy_out_dir_are_refused(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert _exit(["evidence", "no-such-model", "--out", str(out)]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert not out.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert _exit(["evidence", "no-such-model", "--out", str(busy)]) == 2
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
