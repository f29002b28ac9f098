"""The evidence run's model under test and control twins, per role, against the
seeds written out by hand; and its refusals before any weights are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.planted import planted_chain_config, planted_chain_model
from mesainterp.model import (
    ModelConfig,
    build_model,
    fingerprint,
    random_init_twin,
    save_checkpoint,
)
from mesainterp.runs.evidence_run import evidence_subject, plan_evidence
from mesainterp.tasks import get_task

TASK = get_task("tree-path", n_nodes=6, max_depth=3)
CONFIG = ModelConfig(
    n_layers=1, d_model=8, n_heads=1, d_head=8, d_mlp=8,
    d_vocab=TASK.d_vocab, n_ctx=TASK.seq_len, seed=3,
)  # fmt: skip


def _checkpoint(tmp_path: Path, *, task: bool = True) -> Path:
    target = tmp_path / "tree"
    save_checkpoint(
        build_model(CONFIG), target, config=CONFIG, task=TASK.config_dict() if task else None
    )
    return target


def _prints(models) -> list[str]:
    return [fingerprint(m) for m in models]


def test_trained_model_is_the_checkpoint_with_twins_from_the_next_seed(tmp_path) -> None:
    ckpt = _checkpoint(tmp_path)
    subject = evidence_subject(plan_evidence(str(ckpt)), n_twins=3)
    assert subject.name == "tree"
    assert subject.fingerprint == fingerprint(build_model(CONFIG))
    assert _prints(subject.controls) == _prints(random_init_twin(CONFIG, seed=s) for s in (4, 5, 6))


def test_random_init_scores_the_first_twin_against_the_ones_after(tmp_path) -> None:
    ckpt = _checkpoint(tmp_path)
    subject = evidence_subject(plan_evidence(str(ckpt), role="random-init"), n_twins=2)
    assert subject.name == "tree (random-init twin)" and subject.fingerprint is None
    assert fingerprint(subject.model) == fingerprint(random_init_twin(CONFIG, seed=4))
    assert _prints(subject.controls) == _prints(random_init_twin(CONFIG, seed=s) for s in (5, 6))


def test_planted_scores_the_tasks_planted_model_against_its_twins(tmp_path) -> None:
    ckpt = _checkpoint(tmp_path)
    subject = evidence_subject(plan_evidence(str(ckpt), role="planted"), n_twins=2)
    assert subject.name == "planted-chain (tree-path)"
    assert fingerprint(subject.model) == fingerprint(planted_chain_model(TASK))
    shape = planted_chain_config(TASK)
    assert _prints(subject.controls) == _prints(random_init_twin(shape, seed=s) for s in (1, 2))


@pytest.mark.parametrize(
    ("model", "role", "match"),
    [
        ("no-such-model", "trained", "no-such-model"),
        ("untasked", "trained", "records no task"),
        ("tree", "sideways", "role"),
    ],
)
def test_plan_refuses_bad_input_in_one_line(tmp_path, model, role, match) -> None:
    if model == "untasked":
        model = str(_checkpoint(tmp_path, task=False))
    elif model == "tree":
        model = str(_checkpoint(tmp_path))
    with pytest.raises(MesaInterpError, match=match):
        plan_evidence(model, role=role)
