"""Ground truth for the mechanism card: the planted backward-chaining tree-path model.

The card must state the planted algorithm: every planted head's role claim is
supported (edge-token concatenation by L0H0, goal movement by L0H1, one climbing head
per layer L1H0..L{depth}H0, the readout by the last layer's H0), the chain probes
climb one level per layer at ":", the literature table
finds Brinkmann et al.'s pattern, and the random-init twin gets no supported role
claim and no "consistent" verdict: that is the failing case.
"""

from __future__ import annotations

import json

import pytest

from mesainterp.evidence.planted_registry import planted_model
from mesainterp.mechanism import (
    MIN_DIRECT,
    MIN_LENS_ACC,
    MechanismCard,
    mechanism_card,
)
from mesainterp.model.build import random_init_twin
from mesainterp.tasks import TreePathTask

KW = {"n": 32, "steps": 2, "n_boot": 200}


@pytest.fixture(scope="module")
def cards() -> tuple[MechanismCard, MechanismCard]:
    task = TreePathTask()
    planted = planted_model(task)
    other = random_init_twin(planted.config, seed=planted.config.seed + 40)
    return (
        mechanism_card(planted.model, task, control=planted.control, **KW),
        mechanism_card(planted.control, task, control=other, **KW),
    )


def test_thresholds_are_the_declared_ones() -> None:
    assert (MIN_DIRECT, MIN_LENS_ACC) == (1.0, 0.5)


def test_planted_heads_claims_supported(cards: tuple[MechanismCard, MechanismCard]) -> None:
    card, _ = cards
    depth = TreePathTask().max_depth
    last = depth + 1
    supported = {(c.head, c.query_role, c.relation) for c in card.supported() if c.kind == "role"}
    planted = {
        ("L0H0", "edge child tokens", "previous token"),
        ("L0H1", "answer 1", "goal"),
        *{(f"L{k}H0", ":", f"edge into goal ancestor {k - 1}") for k in range(1, depth + 1)},
        (f"L{last}H0", "answer 1", "edge onto path"),
    }
    assert planted <= supported, planted - supported
    verdicts = {r.finding.split(" (")[0]: r.verdict for r in card.literature}
    assert verdicts["deduction heads climb one tree level per layer"] == "consistent"
    assert verdicts["edge-token concatenation"] == "consistent"
    assert verdicts["goal movement"] == "consistent"
    assert verdicts["register tokens and subgoals for paths deeper than the layer count"] == (
        "not tested"
    )
    # Ablating any climbing head at ":" breaks the answers (the patching table), and
    # the card's patching claims name only heads that matter.
    patching = card.tables["patching"]
    hit = patching[patching.matters]
    matters = set(zip(hit.head_name, hit.query_role, strict=True))
    assert {(f"L{k}H0", ":") for k in range(1, depth + 1)} <= matters
    assert (f"L{last}H0", "answer 1") in matters
    claimed = {(c.head, c.query_role) for c in card.supported() if c.kind == "patching"}
    assert claimed and claimed <= matters
    # The chain probes climb one level per layer at ":", where the planted heads climb.
    stairs = {c.query_role: c.status for c in card.claims if c.relation == "staircase"}
    assert stairs[":"] == "supported"
    # The sink heads are listed, as failed claims.
    assert any(c.status == "failed" and c.relation.endswith("|") for c in card.claims)


def test_random_init_twin_supports_no_role(cards: tuple[MechanismCard, MechanismCard]) -> None:
    _, control = cards
    assert not [c for c in control.supported() if c.kind in ("role", "patching", "probe")]
    assert all(r.verdict != "consistent" for r in control.literature)


def test_card_writes_markdown_json_and_tables(
    cards: tuple[MechanismCard, MechanismCard], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    card, _ = cards
    paths = card.write(tmp_path)
    text = (tmp_path / "mechanism.md").read_text()
    assert "## Compared with Brinkmann et al. 2024" in text and "## Claims that failed" in text
    data = json.loads(paths["json"].read_text())
    assert data["format"] == "mesainterp.mechanism"
    assert len(data["claims"]) == len(card.claims)
    for name in ("roles", "patching", "probes", "dla", "lens"):
        assert (tmp_path / f"{name}.csv").exists()
    # Every claim's evidence names a table the card wrote.
    assert all(c.evidence.split()[0] in {f"{n}.csv" for n in card.tables} for c in card.claims)


def test_instance_panels_show_where_the_readout_head_attends() -> None:
    """On one planted example, the readout head at answer 1 (position prompt_len, which
    holds the root path[0]) puts its attention on the edge into the next path node,
    path[1]."""
    from mesainterp.mechanism.builtin import task_query_roles
    from mesainterp.mechanism.instance import head_attention_panels
    from mesainterp.mechanism.patch_claims import patching_claims

    task = TreePathTask()
    model = planted_model(task).model
    batch = task.sample(16, seed=0)
    example = next(b for b in range(16) if len(batch.instances[b].path) >= 2)
    roles = task_query_roles(task, steps=1)
    claims, _ = patching_claims(model, batch, roles, n_boot=50, seed=0)
    panels = head_attention_panels(model, batch, example, claims, roles, task.n_nodes)
    last = task.max_depth + 1
    mass = panels[f"answer 1: L{last}H0"]
    assert mass[batch.instances[example].path[1]] > 0.99


def test_mechanism_card_docstring_example_runs() -> None:
    import doctest

    test = doctest.DocTestFinder(recurse=False).find(mechanism_card, "mechanism_card")[0]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
