"""The top-n search verified by exact faithfulness: the planted circuit (the answer is
known), `faithfulness()` as its oracle, a budget, and an HF-config model."""

from __future__ import annotations

import pytest
import torch

from mesainterp.attribution import EdgeScores, edge_attribution
from mesainterp.discovery import PLANTED_EDGES, faithfulness, planted_model, planted_pair
from mesainterp.discovery.budget import Budget
from mesainterp.discovery.topn import default_grid, topn_circuit
from mesainterp.errors import ConfigError
from tests.families import family_bridge, pair_inputs


@pytest.fixture(scope="module")
def planted():
    case = planted_pair()
    return planted_model(), {"clean": case.clean, "corrupted": case.corrupted,
                             "metric": case.metric}  # fmt: skip


@pytest.mark.parametrize("scorer", ["eap", "eap-ig"])
def test_the_smallest_faithful_top_n_is_the_planted_circuit(planted, scorer) -> None:
    model, kw = planted
    found = topn_circuit(model, target=0.99, scorer=scorer, grid=range(1, 12), n_boot=50, **kw)
    # Every planted edge is needed (a chain), so no top-2 is faithful and top-3 is exact.
    assert (found.n, found.reached, found.status) == (3, True, "complete")
    assert set(found.circuit.edges) == PLANTED_EDGES
    assert found.faithfulness == pytest.approx(1.0, abs=1e-6)
    assert [n for n, _ in found.curve] == [1, 2, 3]
    assert all(v < 0.99 for _, v in found.curve[:-1])
    assert found.circuit.params["status"] == "complete" and found.circuit.params["top_n"] == 3
    assert found.n_runs == 3


def test_the_scan_agrees_with_faithfulness_measured_directly(planted) -> None:
    """faithfulness() (its size curve on the same ranking) is the scan's oracle."""
    model, kw = planted
    scores = edge_attribution(model, method="eap", **kw)
    found = topn_circuit(model, target=2.0, scores=scores, grid=[1, 2, 4, 8, 16], n_boot=50, **kw)
    assert not found.reached and found.n == 16  # unreachable target: the largest measured
    rows = faithfulness(
        model, found.circuit, ablations=("resample",), curve_k=[1, 2, 4, 8, 16],
        ranking=[e for e, _ in scores.ranked()], n_boot=50, progress=False, **kw,
    )  # fmt: skip
    oracle = [(r.k, r.value) for r in rows if r.measure == "curve"]
    assert [n for n, _ in found.curve] == [k for k, _ in oracle]
    for (_, ours), (_, theirs) in zip(found.curve, oracle, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-6)
    assert found.rows[0].measure == "faithfulness"
    assert found.circuit.faithfulness == pytest.approx(found.faithfulness, abs=1e-6)


def test_a_bad_ranking_is_caught_by_the_measurement(planted) -> None:
    """A scorer that ranks the planted edges last needs a bigger circuit: the answer is
    what faithfulness says, never the ranking's claim."""
    model, kw = planted

    def backwards(model, **inputs) -> EdgeScores:
        good = edge_attribution(model, method="eap", **inputs)
        flipped = good.scores.abs().max() - good.scores.abs()
        return EdgeScores(graph=good.graph, scores=flipped, per_example=good.per_example,
                          method="backwards", params={})  # fmt: skip

    found = topn_circuit(model, target=0.99, scorer=backwards, n_boot=50, **kw)
    assert found.n > 3 and found.reached
    assert set(found.circuit.edges) >= PLANTED_EDGES
    assert found.circuit.method == "backwards"


def test_a_budget_stops_the_scan_with_a_partial_result(planted) -> None:
    model, kw = planted
    found = topn_circuit(
        model, target=0.99, scorer="eap", grid=range(1, 12), budget=Budget(max_runs=2),
        n_boot=50, **kw,
    )  # fmt: skip
    assert (found.status, found.n, found.n_runs, found.reached) == ("partial", 2, 2, False)
    assert found.circuit.params["status"] == "partial"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"grid": [2, 1]}, "grid[1]"), ({"grid": [0]}, "grid[0]"), ({"grid": []}, "grid"),
     ({"target": "high"}, "target"), ({"scorer": "eap-xx"}, "method")],
)  # fmt: skip
def test_bad_arguments_name_the_field(planted, kwargs, field) -> None:
    model, kw = planted
    with pytest.raises(ConfigError) as info:
        topn_circuit(model, n_boot=10, **kw, **kwargs)
    assert info.value.field == field


def test_default_grid_ends_at_the_whole_graph() -> None:
    assert default_grid(1) == [1]
    assert default_grid(10) == [1, 2, 5, 10]
    assert default_grid(21) == [1, 2, 5, 10, 20, 21]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_topn_runs_on_an_hf_config_model(family) -> None:
    model = family_bridge(family)
    clean, corrupted, metric = pair_inputs(batch=4, seq=6, differ_at=(1, 3))
    found = topn_circuit(
        model, clean=clean, corrupted=corrupted, metric=metric, target=0.8, scorer="eap-ig",
        scorer_kwargs={"ig_steps": 3}, n_boot=50,
    )  # fmt: skip
    # The grid ends at the whole graph, whose faithfulness is 1: the target is reached.
    assert found.reached and found.faithfulness >= 0.8
    assert all(v < 0.8 for _, v in found.curve[:-1])
    rows = faithfulness(
        model, found.circuit, clean=clean, corrupted=corrupted, metric=metric,
        ablations=("resample",), n_boot=50, progress=False,
    )  # fmt: skip
    assert rows[0].value == pytest.approx(found.faithfulness, abs=1e-5)
    assert torch.isfinite(torch.tensor(found.faithfulness))


@pytest.mark.parametrize("obj", [topn_circuit, default_grid, Budget], ids=lambda o: o.__name__)
def test_docstring_examples_print_what_they_say(obj) -> None:
    from tests.unit.test_doctests import run_examples

    assert run_examples(obj, obj.__name__).failed == 0
