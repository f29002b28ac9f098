"""Circuits per position and per role, on the planted-circuit oracle.

The planted model copies the token at position 0 through L0H1 (value at 0, every
later position reads it with uniform attention) and L1H0 (value at every position,
read by the last) to the logits at the last position. Per position its circuit is
exactly

    embed@0 -> L0H1.v@0,   L0H1@p -> L1H0.v@p for every p,   L1H0@5 -> logits@5

which the position-agnostic graph cannot say: its edge embed -> L0H1.v spans every
position, though only position 0 carries the signal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mesainterp.attribution import EdgeForward, edge_attribution
from mesainterp.discovery import (
    PLANTED_EDGES,
    Circuit,
    CircuitFormatError,
    acdc,
    faithfulness,
    planted_model,
    planted_pair,
)
from mesainterp.errors import ConfigError
from mesainterp.viz.circuit import circuit_layout

SEQ = 6
PLANTED_AT = frozenset(
    {("embed@0", "L0H1.v@0"), ("L1H0@5", "logits@5")}
    | {(f"L0H1@{p}", f"L1H0.v@{p}") for p in range(SEQ)}
)
ROLES = {"first": 0, "last": -1}
PLANTED_BY_ROLE = frozenset(
    {("embed@first", "L0H1.v@first"), ("L1H0@last", "logits@last")}
    | {(f"L0H1@{r}", f"L1H0.v@{r}") for r in ("first", "last", "other")}
)
CIRCUITS = Path(__file__).resolve().parents[3] / "circuits"


@pytest.fixture(scope="module")
def planted() -> tuple:
    model = planted_model()
    case = planted_pair(8, seq_len=SEQ)
    inputs = dict(clean=case.clean, corrupted=case.corrupted, metric=case.metric)
    return model, EdgeForward(model), inputs


def _faith(model, ef, inputs, circuit: Circuit, **kw) -> float:
    rows = faithfulness(
        model, circuit, ablations=("resample",), n_boot=10, forward=ef, progress=False,
        **inputs, **kw,
    )  # fmt: skip
    return next(r.value for r in rows if r.measure == "faithfulness")


def test_acdc_per_position_finds_the_planted_positions(planted) -> None:
    model, ef, inputs = planted
    plain = acdc(model, threshold=1e-4, forward=ef, progress=False, **inputs)
    assert set(plain.kept) == PLANTED_EDGES
    each = acdc(model, threshold=1e-4, forward=ef, progress=False, positions="each", **inputs)
    assert set(each.kept) == PLANTED_AT
    assert each.positions == {"granularity": "each", "labels": [str(p) for p in range(SEQ)]}
    assert each.damages.shape == (*plain.damages.shape, SEQ)
    # The agnostic edge embed -> L0H1.v at every position but 0 was tested and is inert.
    assert all(e not in each.kept for e in [(f"embed@{p}", f"L0H1.v@{p}") for p in (1, 5)])
    # The shortcuts (restart, inert and dangling skips) change no decision.
    slow = acdc(
        model, threshold=1e-4, forward=ef, progress=False, positions="each", restart=False,
        skip_inert=False, **inputs,
    )  # fmt: skip
    assert set(slow.kept) == PLANTED_AT and slow.n_runs > each.n_runs
    by_role = acdc(model, threshold=1e-4, forward=ef, progress=False, positions=ROLES, **inputs)
    assert set(by_role.kept) == PLANTED_BY_ROLE


def test_wrong_positions_are_unfaithful_and_the_planted_ones_are_not(planted) -> None:
    model, ef, inputs = planted
    spec = {"granularity": "each", "labels": [str(p) for p in range(SEQ)]}
    right = Circuit.from_edges(dict.fromkeys(PLANTED_AT, 1.0), method="manual", positions=spec)
    assert _faith(model, ef, inputs, right) == pytest.approx(1.0, abs=1e-5)
    # The same components one position late: the signal at position 0 is cut.
    shifted = {("embed@1", "L0H1.v@1")} | (PLANTED_AT - {("embed@0", "L0H1.v@0")})
    wrong = Circuit.from_edges(dict.fromkeys(shifted, 1.0), method="manual", positions=spec)
    assert abs(_faith(model, ef, inputs, wrong)) <= 1e-5
    # Missing one late position of the L0H1 -> L1H0 path loses that position's share.
    partial = Circuit.from_edges(
        dict.fromkeys(PLANTED_AT - {("L0H1@3", "L1H0.v@3")}, 1.0), method="manual",
        positions=spec,
    )  # fmt: skip
    assert 0.5 < _faith(model, ef, inputs, partial) < 1 - 1e-3
    # A circuit by role is measured on the roles it was found with.
    roles = {"granularity": "roles", "labels": ["first", "last", "other"]}
    by_role = Circuit.from_edges(
        dict.fromkeys(PLANTED_BY_ROLE, 1.0), method="manual", positions=roles
    )
    with pytest.raises(ConfigError, match=r"roles.*found by role"):
        _faith(model, ef, inputs, by_role)
    with pytest.raises(ConfigError, match=r"roles.*the circuit's"):
        _faith(model, ef, inputs, by_role, roles={"first": 0})
    assert _faith(model, ef, inputs, by_role, roles=ROLES) == pytest.approx(1.0, abs=1e-5)


def test_eap_per_position_ranks_the_planted_edges_first(planted) -> None:
    model, ef, inputs = planted
    scores = edge_attribution(model, positions="each", forward=ef, **inputs)
    top = {e for e, s in scores.ranked() if abs(s) > 1e-6}
    assert top == PLANTED_AT


# -- JSON and figures -----------------------------------------------------------------


def _positional() -> Circuit:
    spec = {"granularity": "each", "labels": ["0", "1", "2"]}
    return Circuit.from_edges(
        {("embed@0", "L0H1.v@0"): 0.5, ("L0H1@2", "L1H0.v@2"): 0.25,
         ("L1H0@2", "logits@2"): -0.125},
        method="acdc", positions=spec,
        node_order=("embed", "pos_embed", "L0H0", "L0H1", "L1H0", "L1H1"),
    )  # fmt: skip


def test_positional_json_round_trip(tmp_path) -> None:
    circuit = _positional()
    assert circuit.nodes == ("embed@0", "L0H1@0", "L0H1@2", "L1H0@2", "logits@2")
    again = Circuit.load(circuit.save(tmp_path / "circuit.json"))
    assert again == circuit
    data = circuit.to_dict()
    assert data["schema_version"] == 2 and data["positions"]["granularity"] == "each"
    assert {"source": "L0H1", "target": "L1H0", "input": "v", "position": "2",
            "score": 0.25} in data["edges"]  # fmt: skip
    assert {"name": "L0H1", "layer": 0, "position": "2"} in data["nodes"]
    site = next(iter(circuit.edge_sites))[1]
    assert (site.node_name if site.pos is None else None, site.kind, site.pos) == (None, "v", 0)
    assert "per position" in repr(circuit)
    del data["edges"][0]["position"]
    with pytest.raises(CircuitFormatError, match=r"edges\[0\]\.position"):
        Circuit.from_dict(data)
    with pytest.raises(CircuitFormatError, match="one position of 0, 1, 2"):
        Circuit.from_edges(
            {("embed@0", "L0H1.v@1"): 1.0}, method="m", positions=_positional().positions
        )
    with pytest.raises(CircuitFormatError, match="pass positions="):
        Circuit.from_edges({("embed@0", "L0H1.v@0"): 1.0}, method="m")


@pytest.mark.parametrize(
    "path", sorted(CIRCUITS.glob("*/circuit.json")), ids=lambda p: p.parent.name
)
def test_committed_version_1_circuits_read_back_unchanged(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    circuit = Circuit.load(path)
    assert circuit.positions is None
    assert circuit.to_dict() == data


def test_the_figure_stacks_and_labels_nodes_by_position() -> None:
    data = _positional().to_dict()
    layout = circuit_layout(data["nodes"], data["edges"], [e["score"] for e in data["edges"]])
    assert set(layout.names) == set(_positional().nodes)
    assert layout.texts["L0H1@2"] == "L0H1 @2" and layout.texts["logits@2"] == "logits @2"
    ys = [layout.positions[n][1] for n in ("L0H1@0", "L0H1@2")]
    assert ys[0] != ys[1]
    assert layout.positions["L0H1@0"][0] == layout.positions["L0H1@2"][0]  # one layer column
    # L0H1's value at 0 is read by its output at 2: the move attention makes, dashed.
    assert layout.attention == [("L0H1@0", "L0H1@2")]
    # Many positions in one column come out in position order.
    names = [f"L0H0@{p}" for p in (3, 10, 1, 2)] + ["embed@1"]
    order = circuit_layout(names, [], []).positions
    ys = [order[f"L0H0@{p}"][1] for p in (1, 2, 3, 10)]
    assert ys == sorted(ys, reverse=True)  # first position on top


def test_agnostic_plus_positions_keep_the_plain_total(planted) -> None:
    """Faithfulness of a per-position circuit holding every position of the agnostic
    planted edges equals the agnostic circuit's."""
    model, ef, inputs = planted
    spec = {"granularity": "each", "labels": [str(p) for p in range(SEQ)]}
    everywhere = {(f"{u}@{p}", f"{d}@{p}") for u, d in PLANTED_EDGES for p in range(SEQ)}
    a = _faith(model, ef, inputs, Circuit.from_edges(dict.fromkeys(PLANTED_EDGES, 1.0), method="m"))
    b = _faith(model, ef, inputs, Circuit.from_edges(dict.fromkeys(everywhere, 1.0), method="m",
                                                     positions=spec))  # fmt: skip
    assert a == pytest.approx(b, abs=1e-6) and a == pytest.approx(1.0, abs=1e-5)
    assert torch.isfinite(torch.tensor(a))


def test_acdc_by_role_on_the_planted_backward_chaining_model() -> None:
    """The planted tree-path model: L0H1 copies the goal (its value at the goal token)
    to the answer positions, L1H0 climbs from there, L3H0 reads the next node out to
    the logits. Per task role, ACDC finds those heads at those roles and nothing at
    the edge-list roles (the same in both runs of a goal counterfactual)."""
    from mesainterp.evidence.planted import planted_chain_model
    from mesainterp.tasks import TreePathTask, task_roles

    task = TreePathTask(n_nodes=5, max_depth=2)
    model = planted_chain_model(task)
    pair = task.counterfactual_pairs(8, seed=0)
    roles = task_roles(task, pair.clean)
    inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
                  metric=task.default_metric(pair), batch=pair.clean)  # fmt: skip
    found = acdc(model, threshold=0.05, positions=roles, progress=False, **inputs)
    steps = ("answer step 1", "answer step 2")  # where this pair's metric reads
    assert set(pair.answer_pos.tolist()) == {int(roles[s][0]) for s in steps}
    assert set(found.kept) == {
        ("embed@goal", "L0H1.v@goal"),
        ("L0H1@answer step 1", "L1H0.q@answer step 1"),
        ("L1H0@answer step 1", "L3H0.q@answer step 1"),
        *((f"L0H1@{s}", f"L3H0.q@{s}") for s in steps),
        *((f"L3H0@{s}", f"logits@{s}") for s in steps),
    }
    assert found.final_metric == pytest.approx(found.full_metric, rel=1e-3)
    # Measured by role it is the whole behaviour; the goal copy read one role off is
    # none of it.
    circuit = Circuit.from_edges(found.kept, method="acdc", positions=found.positions)
    ef = EdgeForward(model)
    assert _faith(model, ef, inputs, circuit, roles=roles) == pytest.approx(1.0, abs=1e-3)
    moved = dict(circuit.edges)
    del moved[("embed@goal", "L0H1.v@goal")]
    moved[("embed@goal edge child", "L0H1.v@goal edge child")] = 1.0
    wrong = Circuit.from_edges(moved, method="manual", positions=found.positions)
    assert abs(_faith(model, ef, inputs, wrong, roles=roles)) <= 1e-3
