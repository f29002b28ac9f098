"""Progress bars on the probe loops and the patching engine: on by default, off by flag."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.engine import run_sweep
from mesainterp.probes.controls import ProbeSpec, run_probes
from mesainterp.probes.dataset import collect_activations, probe_sites, task_batches
from mesainterp.sites.sweeps import resid_sites
from mesainterp.tasks.tree_path import TreePathTask

TASK = TreePathTask(n_nodes=7, max_depth=3)


@pytest.fixture(scope="module")
def model():
    cfg = ModelConfig(
        n_layers=1,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=32,
        d_vocab=TASK.d_vocab,
        n_ctx=TASK.seq_len,
        seed=0,
    )
    return build_model(cfg)


def _loops(model) -> list[Callable[[bool | None], object]]:
    sites = probe_sites(model_shape(model), [TASK.goal_pos])

    def collect(progress: bool | None) -> object:
        batches = task_batches(TASK, 60, batch_size=30)
        return collect_activations(model, batches, sites, progress=progress)

    data = collect_activations(model, task_batches(TASK, 60, batch_size=60), sites, progress=False)

    def probes(progress: bool | None) -> object:
        return run_probes(data, ProbeSpec(target="goal", folds=2), progress=progress)

    def patching(progress: bool | None) -> object:
        pair = TASK.counterfactual_pairs(4, seed=0)
        return run_sweep(
            model,
            resid_sites(model_shape(model), seq_len=TASK.seq_len)[:3],
            clean=pair.clean.inputs,
            corrupted=pair.corrupted.inputs,
            metric=lambda logits, batch: logits[:, -1, 0],
            progress=progress,
        )

    return [collect, probes, patching]


def test_bars_show_by_default_and_the_switch_turns_them_off(
    model, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MESAINTERP_NO_PROGRESS", raising=False)
    for loop in _loops(model):
        capsys.readouterr()
        loop(None)
        assert capsys.readouterr().err.strip(), loop.__name__
        loop(False)
        assert capsys.readouterr().err == "", loop.__name__
        monkeypatch.setenv("MESAINTERP_NO_PROGRESS", "1")
        loop(None)
        assert capsys.readouterr().err == "", loop.__name__
        monkeypatch.delenv("MESAINTERP_NO_PROGRESS")


def test_explicit_true_wins_over_the_environment(
    model, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESAINTERP_NO_PROGRESS", "1")
    collect = _loops(model)[0]
    capsys.readouterr()
    collect(True)
    assert "activations" in capsys.readouterr().err
