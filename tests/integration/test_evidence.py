"""The rebuilt battery (version 2) on the shipped models: the review's failing cases.

What must hold whatever the trained models turn out to do:
- the review's look-ahead case: at ":" on tree-path a search-free baseline
  (degree counts, goal/start one-hots and neighbours) matches the trained model's
  future-node AUC, and the battery calls that a fail;
- a random-init model (one of the twin seeds scored against the other five) passes
  none of the probe tests;
- the planted chainer passes goal representation, look-ahead and iterative
  computation; the planted GD model is best fit by one GD step.

The trained models' verdicts are findings, not assertions (measured numbers are
in the report of the battery run, `mesainterp evidence NAME`).

The probe tests and the algorithmic match run here; goal retargeting and the
localised mechanism (patching and EAP on every pair, the slow part) run in the
unit tests on planted models and in `mesainterp evidence`, to keep CI short.
"""

from __future__ import annotations

import pytest
import torch

from mesainterp import zoo
from mesainterp.evidence import EvidenceConfig, Scorecard, run_battery, twin_controls
from mesainterp.evidence.lookahead import look_ahead_reading
from mesainterp.evidence.margin import judge
from mesainterp.evidence.planted import (
    planted_chain_config,
    planted_chain_model,
    planted_gd_config,
    planted_gd_model,
)
from mesainterp.evidence.profile import collect_inputs
from mesainterp.model import ModelConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Smaller than the command's defaults (600 examples) to keep CI short.
CONFIG = EvidenceConfig(n_examples=300, n_pairs=16, n_random=1)
PROBE_TESTS = ["goal_representation", "look_ahead", "iterative_computation", "algorithmic_match"]
PLANTED = {
    "tree-path": (planted_chain_model, planted_chain_config),
    "icl-regression": (planted_gd_model, planted_gd_config),
}
_CACHE: dict[tuple[str, str], Scorecard] = {}


@pytest.fixture(autouse=True)
def _one_thread():
    # On a shared 2-core machine one torch thread per process runs these small
    # models several times faster than two contending ones.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shipped(task_name: str) -> None:
    if task_name not in zoo.list_models():
        pytest.skip(f"zoo model {task_name!r} is not shipped")


def _card(task_name: str, which: str) -> Scorecard:
    key = (task_name, which)
    if key in _CACHE:
        return _CACHE[key]
    _shipped(task_name)
    task = zoo.load_task(task_name)
    torch.manual_seed(0)
    if which == "random-init":
        config: ModelConfig = zoo.load(task_name).config
        model, *twins = twin_controls(config, n=6, first_seed=config.seed + 101)
    else:
        build, shape = PLANTED[task_name]
        model, twins = build(task), twin_controls(shape(task), first_seed=1)
    card = run_battery(
        model, task, control=twins, config=CONFIG, model_name=which, tests=PROBE_TESTS,
        progress=False,
    )  # fmt: skip
    _CACHE[key] = card
    return card


def test_the_reviews_look_ahead_at_the_colon_is_matched_by_a_search_free_baseline() -> None:
    # Review: ridge on degree counts + start/goal one-hots reached AUC 0.879 against
    # the model's 0.849 at ":" on tree-path. Matched means fail.
    _shipped("tree-path")
    task, ckpt = zoo.load_task("tree-path"), zoo.load("tree-path")
    inputs = collect_inputs(
        ckpt.model, twin_controls(ckpt.config), task, n_examples=CONFIG.n_examples, seed=0
    )
    reading = look_ahead_reading(inputs, CONFIG, inputs.query_pos, hard=False)
    assert reading is not None
    j = judge(
        [reading], threshold=CONFIG.lookahead_margin, skill=True, n_boot=CONFIG.n_boot, seed=0
    )
    name, baseline = j.best_baseline  # type: ignore[misc]
    assert baseline >= j.value - 0.03, (name, baseline, j.value)
    assert j.p_value > 0.05 and j.margin_low < CONFIG.lookahead_margin


@pytest.mark.parametrize("task_name", ["tree-path", "graph-search", "maze", "icl-regression"])
def test_a_random_init_model_passes_no_probe_test(task_name: str) -> None:
    card = _card(task_name, "random-init")
    assert card.n_pass == 0, card.table()


def test_the_planted_models_pass_the_tests_their_construction_implies() -> None:
    chain = _card("tree-path", "planted")
    for name in ("goal_representation", "look_ahead", "iterative_computation"):
        assert chain.result(name).passed, chain.result(name).reason
    gd = _card("icl-regression", "planted")
    assert gd.result("algorithmic_match").passed
    assert gd.result("algorithmic_match").details["closest"] in ("gd-1", "gd++")
