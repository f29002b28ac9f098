"""The whole battery on tiny models: every test reports its number, control,
threshold and verdict; tests that do not fit the task say so."""

from __future__ import annotations

import pytest

from mesainterp.evidence import TESTS, EvidenceConfig, rank, run_battery
from mesainterp.evidence.planted import planted_gd_config, planted_gd_model
from mesainterp.model import ModelConfig, build_model, random_init_twin
from mesainterp.tasks import get_task

SMALL = EvidenceConfig(n_examples=60, n_pairs=4, n_random=1, n_boot=50, folds=3, state_ranks=2)


def test_path_task_battery_reports_every_test() -> None:
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
        d_vocab=task.d_vocab, n_ctx=task.seq_len, seed=5,
    )  # fmt: skip
    card = run_battery(
        build_model(config), task, control=random_init_twin(config), config=SMALL,
        model_name="tiny", progress=False,
    )  # fmt: skip
    assert [t.test for t in card.tests] == list(TESTS)
    verdicts = {t.test: t.verdict for t in card.tests}
    assert verdicts["algorithmic_match"] == "not-applicable"
    for name in ("goal_representation", "goal_retargeting", "look_ahead", "iterative_computation"):
        result = card.result(name)
        assert result.verdict in ("pass", "fail"), (name, result.reason)
        assert result.value is not None and result.control is not None
        assert result.ci_low is not None and result.ci_low <= result.value + 1e-9
    goal = card.result("goal_representation")
    assert f"{SMALL.goal_margin:g}" in goal.criterion
    assert len(goal.details["by_layer"]) == 2 and len(goal.details["random_init_by_layer"]) == 2
    doc = card.to_dict()
    assert doc["config"]["goal_margin"] == SMALL.goal_margin
    assert doc["provenance"]["model_fingerprint"].startswith("sha256:")
    assert doc["provenance"]["seed"] == SMALL.seed
    assert all("threshold" in t and "verdict" in t for t in doc["tests"])


def test_planted_gd_model_outranks_its_random_twin() -> None:
    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    config = planted_gd_config(task)
    planted = run_battery(
        planted_gd_model(task), task, control=random_init_twin(config, seed=1),
        config=SMALL, model_name="planted", progress=False,
    )  # fmt: skip
    twin = run_battery(
        random_init_twin(config, seed=1), task, control=random_init_twin(config, seed=2),
        config=SMALL, model_name="random-init", progress=False,
    )  # fmt: skip
    for card in (planted, twin):
        for name in ("goal_representation", "goal_retargeting", "look_ahead"):
            assert card.result(name).verdict == "not-applicable"
    match = planted.result("algorithmic_match")
    assert match.passed and match.value == pytest.approx(1.0, abs=1e-4)
    assert match.details["gd_lr_fitted"] == pytest.approx(task.effective_gd_lr, rel=1e-3)
    assert not twin.result("algorithmic_match").passed
    assert planted.result("localised_mechanism").passed
    assert [name for name, _ in rank([twin, planted])] == ["planted", "random-init"]


def test_battery_refuses_unknown_tests_and_tasks() -> None:
    from mesainterp.errors import MesaInterpError

    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    model = planted_gd_model(task)
    with pytest.raises(MesaInterpError, match="unknown test"):
        run_battery(model, task, control=model, tests=["telepathy"], progress=False)
