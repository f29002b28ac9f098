"""`mesainterp train`, `eval` and `zoo` through a real subprocess, with --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TOML = """
task = "tree-path"
steps = 3
batch_size = 8
warmup_steps = 1
eval_every = 3
eval_n = 16
checkpoint_every = 3

[task_params]
n_nodes = 5
max_depth = 2

[model]
n_layers = 1
d_model = 16
n_heads = 2
d_head = 8
d_mlp = 32
"""


def mesainterp(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MESAINTERP_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mesainterp", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.toml"
    config.write_text(TOML)
    out = root / "run"
    proc = mesainterp("--json", "train", "tree-path", "--out", str(out), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_train_reports_step_and_held_out_metrics(trained_run):
    out, data = trained_run
    assert data["step"] == 3
    assert 0.0 <= data["eval"]["metrics"]["exact_path"] <= 1.0
    assert (out / "checkpoint" / "model.safetensors").is_file()
    meta = json.loads((out / "checkpoint" / "config.json").read_text())["metadata"]
    assert meta["training_command"][:3] == ["mesainterp", "--json", "train"]


def test_eval_a_run_directory_as_json(trained_run):
    out, data = trained_run
    proc = mesainterp("--json", "eval", str(out), "--n", "20")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n"] == 20
    assert result["fingerprint"] == data["fingerprint"]
    assert {"exact_path", "token_acc", "loss", "exact_path_ci_low"} <= set(result["metrics"])


@pytest.mark.parametrize("flags_after", [True, False])
def test_global_flags_are_taken_before_or_after_the_subcommand(trained_run, flags_after):
    out, data = trained_run
    args = ["eval", str(out), "--n", "8"]
    proc = mesainterp(*([*args, "--json"] if flags_after else ["--json", *args]))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fingerprint"] == data["fingerprint"]


def test_resume_with_more_steps(trained_run, tmp_path):
    out, _ = trained_run
    proc = mesainterp("--json", "train", "tree-path", "--out", str(out), "--resume", "--steps", "4")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["step"] == 4


def test_bad_inputs_exit_2_with_one_line():
    proc = mesainterp("--json", "eval", "no-such-model")
    assert proc.returncode == 2
    assert "unknown zoo model 'no-such-model'" in json.loads(proc.stdout)["error"]
    proc = mesainterp("train", "no-such-task", "--out", "/nonexistent/x")
    assert proc.returncode == 2
    assert "tree-path" in proc.stderr


def test_zoo_lists_the_shipped_models_as_json():
    proc = mesainterp("--json", "zoo")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)["models"]
    from mesainterp import zoo

    assert [m["name"] for m in models] == zoo.list_models()
    for model in models:
        assert model["fingerprint"].startswith("sha256:")
        assert model["size_bytes"] > 0
        assert model["training_command"][0] == "mesainterp"
        assert "train" in model["training_command"]
    text = mesainterp("zoo")
    assert text.returncode == 0 and "training command" in text.stdout
