"""Bad command-line arguments and configs: non-zero exit, the option named, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesainterp.cli.main import main
from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.tasks import TreePathTask


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = TreePathTask(n_nodes=4, max_depth=2)
    config = ModelConfig(
        n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=task.d_vocab,
        n_ctx=task.seq_len, seed=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(build_model(config), path, config=config, task=task.config_dict())
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("argv", "option", "allowed"),
    [
        (["patch", "{ckpt}", "--sites", "resid", "--n", "1"], "--n", "an int >= 2"),
        (["patch", "{ckpt}", "--sites", "resid", "--seed", "-3"], "--seed", "an int >= 0"),
        (["patch", "{ckpt}", "--sites", "resid", "--n-boot", "0"], "--n-boot", "an int > 0"),
        (["patch", "{ckpt}", "--sites", "resid", "--n", "many"], "--n", "an int >= 2"),
        (["patch", "{ckpt}", "--sites", "everything"], "--sites", "resid"),
        (["probe", "{ckpt}", "--target", "goal", "--folds", "1"], "--folds", "an int >= 2"),
        (["probe", "{ckpt}", "--target", "goal", "--C", "0"], "--C", "a number > 0"),
        (["probe", "{ckpt}", "--target", "goal", "--batch-size", "0"], "--batch-size", "> 0"),
        (["train", "tree-path", "--steps", "0"], "--steps", "an int in [1, 4294967296)"),
        (["train", "tree-path", "--seed", "-1"], "--seed", "an int in [0, 268435456)"),
        (["train", "tree-path", "--threads", "0"], "--threads", "an int > 0"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], option: str, allowed: str,
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = [a.replace("{ckpt}", str(checkpoint)) for a in argv] + ["--out", str(out)]
    before = _snapshot(checkpoint)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert option in err and allowed in err
    assert not out.exists()
    assert _snapshot(checkpoint) == before


def test_eval_refuses_a_non_positive_n(
    checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(checkpoint), "--n", "0"]) == 2
    assert "--n" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["patch", "{ckpt}", "--sites", "resid", "--n", "4", "--family", "nope"], "family"),
        (["probe", "{ckpt}", "--target", "nope", "--n-examples", "8"], "target"),
        (["probe", "{ckpt}", "--target", "goal", "--positions", "99", "--n-examples", "8"],
         "positions"),
    ],
)  # fmt: skip
def test_bad_values_found_after_loading_still_write_nothing(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], field: str,
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = [a.replace("{ckpt}", str(checkpoint)) for a in argv] + ["--out", str(out)]
    assert main(argv) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()


TRAIN_TOML = (
    'task = "tree-path"\nsteps = 4\n[task_params]\nn_nodes = {n_nodes}\nmax_depth = 2\n'
    "[model]\nn_layers = {n_layers}\nd_model = 16\nn_heads = 1\nd_head = 16\nd_mlp = 32\n{model}"
    "{curriculum}"
)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"curriculum": "[[curriculum]]\nuntil_step = 2\ntask_params = { max_depth = 40 }\n"},
         "curriculum[0].task_params.max_depth"),
        ({"curriculum": "[[curriculum]]\nuntil_step = 2\ntask_params = { depth = 1 }\n"},
         "curriculum[0].task_params.depth"),
        ({"n_nodes": "'five'"}, "task_params.n_nodes"),
        ({"n_layers": "0"}, "model.n_layers"),
        ({"model": "extra = 1\n"}, "model.extra"),
    ],
)  # fmt: skip
def test_bad_train_configs_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: dict[str, str], field: str
) -> None:
    fields = {"n_nodes": "5", "n_layers": "1", "model": "", "curriculum": ""} | values
    config = tmp_path / "bad.toml"
    config.write_text(TRAIN_TOML.format(**fields))
    out = tmp_path / "run"
    assert main(["train", "tree-path", "--config", str(config), "--out", str(out)]) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()


def test_bad_search_task_params_exit_2_and_write_nothing(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "search.toml"
    config.write_text(
        f'[model]\ncheckpoint = "{checkpoint}"\n[task]\nparams = {{ max_depth = "deep" }}\n'
        "[search]\ntop_n = 3\n"
    )
    out = tmp_path / "out"
    assert main(["search", str(config), "--out", str(out)]) == 2
    assert "task.params.max_depth" in capsys.readouterr().err
    assert not out.exists()
