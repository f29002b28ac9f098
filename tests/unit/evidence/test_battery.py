"""The whole battery on tiny models: every test reports its number, best control,
corrected p and verdict; tests that do not fit the task say so; the random-init
control is a distribution; the verdicts are Holm-corrected across tests."""

from __future__ import annotations

import pytest

from mesainterp.evidence import (
    BATTERY_VERSION,
    TESTS,
    EvidenceConfig,
    rank,
    run_battery,
    twin_controls,
)
from mesainterp.evidence.planted import planted_gd_config, planted_gd_model
from mesainterp.evidence.stats import holm
from mesainterp.model import ModelConfig, build_model
from mesainterp.tasks import get_task

# n_boot: the smallest bootstrap p, 1 / (n_boot + 1), times 11 references (algorithmic
# match) and Holm over the tests, must be able to reach 0.05.
SMALL = EvidenceConfig(n_examples=60, n_pairs=4, n_random=1, n_boot=1000, folds=3, state_ranks=2)


def test_path_task_battery_reports_every_test() -> None:
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
        d_vocab=task.d_vocab, n_ctx=task.seq_len, seed=5,
    )  # fmt: skip
    card = run_battery(
        build_model(config), task, control=twin_controls(config), config=SMALL,
        model_name="tiny", progress=False,
    )  # fmt: skip
    assert [t.test for t in card.tests] == list(TESTS)
    verdicts = {t.test: t.verdict for t in card.tests}
    assert verdicts["algorithmic_match"] == "not-applicable"
    for name in ("goal_representation", "goal_retargeting"):
        result = card.result(name)
        assert result.verdict in ("pass", "fail"), (name, result.reason)
        assert result.value is not None and result.control is not None
        assert result.p_adjusted is not None and result.p_adjusted >= result.p_value - 1e-12
    goal = card.result("goal_representation")
    assert f"{SMALL.goal_margin:g}" in goal.criterion
    # Every position is read, the verdict at the declared decision position.
    assert len(goal.details["positions"]) == task.seq_len
    assert goal.details["verdict_pos"] == task.prompt_len
    assert len(goal.details["random_init_distribution"]) == 5
    assert goal.details["best_baseline"]["name"] == "degree counts"  # goal one-hot left out
    look = card.result("look_ahead")
    if look.applicable:
        assert "hard_candidates" in look.details and "all_candidates" in look.details
    doc = card.to_dict()
    assert doc["battery_version"] == BATTERY_VERSION == 2
    assert "Holm" in doc["correction"]
    assert doc["config"]["goal_margin"] == SMALL.goal_margin
    assert doc["provenance"]["model_fingerprint"].startswith("sha256:")
    row = {r["test"]: r for r in card.table()}["goal_representation"]
    assert row["random_init"].endswith("(5 seeds)") and row["best_baseline"]


def test_battery_needs_a_random_init_distribution() -> None:
    from mesainterp.errors import MesaInterpError

    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    config = planted_gd_config(task)
    with pytest.raises(MesaInterpError, match=">= 5 seeds"):
        run_battery(
            planted_gd_model(task), task, control=twin_controls(config, n=1), progress=False
        )


def test_planted_gd_model_outranks_its_random_twin() -> None:
    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    config = planted_gd_config(task)
    planted = run_battery(
        planted_gd_model(task), task, control=twin_controls(config, first_seed=1),
        config=SMALL, model_name="planted", progress=False,
    )  # fmt: skip
    model, *twins = twin_controls(config, n=6, first_seed=1)
    twin = run_battery(
        model, task, control=twins, config=SMALL, model_name="random-init", progress=False
    )
    for card in (planted, twin):
        for name in ("goal_representation", "goal_retargeting", "look_ahead"):
            assert card.result(name).verdict == "not-applicable"
        assert card.result("iterative_computation").verdict == "not-applicable"
    match = planted.result("algorithmic_match")
    assert match.passed and match.value == pytest.approx(1.0, abs=1e-4)
    assert not twin.result("algorithmic_match").passed
    assert planted.result("localised_mechanism").passed
    assert [name for name, _ in rank([twin, planted])] == ["planted", "random-init"]


def test_holm_matches_a_hand_computation_and_can_flip_a_verdict() -> None:
    # Sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04; monotone).
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # Alone each p = 0.03 passes at 0.05; three of them do not all survive.
    assert holm([0.03, 0.03, 0.03]) == pytest.approx([0.09, 0.09, 0.09])
    assert holm([]) == []


def test_battery_refuses_unknown_tests_and_tasks() -> None:
    from mesainterp.errors import MesaInterpError

    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    model = planted_gd_model(task)
    with pytest.raises(MesaInterpError, match="unknown test"):
        run_battery(model, task, control=[model] * 5, tests=["telepathy"], progress=False)


def test_algorithmic_match_compares_every_reference_and_finds_the_planted_step() -> None:
    from mesainterp.evidence.algorithmic import GD_STEPS, algorithmic_match
    from mesainterp.evidence.profile import collect_inputs

    task = get_task("icl-regression", d_x=3, n_context=6, d_model=12)
    config = planted_gd_config(task)
    cfg = EvidenceConfig(n_examples=200, n_boot=400)
    inputs = collect_inputs(
        planted_gd_model(task), twin_controls(config), task, n_examples=40, seed=0
    )
    result = algorithmic_match(inputs, cfg)
    refs = result.details["references"]
    assert set(refs) == {f"gd-{k}" for k in GD_STEPS} | {"ridge", "gd++", "least squares"}
    assert result.passed and result.details["closest"] in ("gd-1", "gd++")
    # GD++ at gamma = 0 is one GD step: the two cannot be told apart, and the test says so.
    assert {"gd-1", "gd++"} - {result.details["closest"]} <= set(
        result.details["indistinguishable_from_best"]
    )
    assert refs["gd-1"]["sensitivity_cos"] == pytest.approx(1.0, abs=1e-6)
    assert refs["least squares"]["r2"] < 0.9  # a reference the planted step is not
    # A model lacking the property: the random-init twin fits no reference.
    model, *twins = twin_controls(config, n=6, first_seed=7)
    on_twin = algorithmic_match(collect_inputs(model, twins, task, n_examples=40, seed=0), cfg)
    assert not on_twin.passed
