"""Kill a real `mesainterp search` ACDC process mid-search; `--resume` finishes it.

The subprocess is SIGKILLed once its ACDC state file is on disk (plus a random delay),
then the search is resumed in this process: it must continue from the state file,
not start over, and write the uninterrupted run's circuit and faithfulness table.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors import safe_open

from mesainterp.atomic import TMP_PREFIX
from mesainterp.cli.main import main
from mesainterp.discovery.acdc_checkpoint import load_progress
from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.tasks import get_task


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    """An ACDC search on a 3-layer model: a few seconds of trial runs to kill."""
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    model_config = ModelConfig(
        n_layers=3, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=task.d_vocab,
        d_vocab_out=task.d_vocab_out, n_ctx=task.seq_len, seed=3,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("acdc-kill")
    save_checkpoint(
        build_model(model_config), folder / "model", config=model_config,
        task=task.config_dict(),
    )  # fmt: skip
    path = folder / "search.toml"
    path.write_text(
        f'[model]\ncheckpoint = "{folder / "model"}"\n\n[search]\nmethod = "acdc"\n'
        "threshold = 0.002\nn_examples = 24\n\n[faithfulness]\ncurve_k = [1, 5]\nn_boot = 20\n"
    )
    return path


def _circuit(out):
    circuit = json.loads((out / "circuit.json").read_text())
    for key in ("created_utc", "command"):
        circuit["provenance"].pop(key)
    return circuit


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert (
        main(["--no-progress", "search", str(config_file), "--out", str(out), "--no-report"]) == 0
    )
    return _circuit(out), (out / "faithfulness.csv").read_text()


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_acdc_search_resumes_to_the_same_circuit(config_file, reference, tmp_path, seed):
    circuit, table = reference
    out = tmp_path / "run"
    argv = ["search", str(config_file), "--out", str(out), "--no-report"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesainterp", *argv],
        env={**os.environ, "MESAINTERP_NO_PROGRESS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((out / "_run").glob("acdc-*.safetensors")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the search saved no ACDC state"
            time.sleep(0.01)
        time.sleep(random.Random(seed).uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 0:
        pytest.skip("the search finished before the signal arrived")
    state = next((out / "_run").glob("acdc-*.safetensors"))
    with safe_open(str(state), framework="pt") as handle:  # the key the file holds
        saved = load_progress(state, key=(handle.metadata() or {})["key"])
    # Killed after some trial runs: mid-search, or (on a slow machine) after ACDC finished.
    assert saved is not None and saved.n_runs > 0
    assert not (out / "circuit.json").exists()

    assert main(["--no-progress", *argv, "--resume"]) == 0
    assert _circuit(out) == circuit
    assert (out / "faithfulness.csv").read_text() == table
    assert not [p for p in out.rglob(f"{TMP_PREFIX}*")], "temporary files left behind"
