"""Ground truth for the mechanism card: the planted backward-chaining tree-path model.

The card must state the planted algorithm: every planted head's role claim is
supported (edge-token concatenation by L0H0, goal movement by L0H1, one climbing head
per layer L1H0..L{depth}H0, the readout by the last layer's H0), the literature table
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
from mesainterp.tasks import TreePathTask

KW = {"n": 32, "steps": 2, "n_boot": 200}


@pytest.fixture(scope="module")
def cards() -> tuple[MechanismCard, MechanismCard]:
    task = TreePathTask()
    planted = planted_model(task)
    return mechanism_card(planted.model, task, **KW), mechanism_card(planted.control, task, **KW)


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
    # The sink heads are listed, as failed claims.
    assert any(c.status == "failed" and c.relation.endswith("|") for c in card.claims)


def test_random_init_twin_supports_no_role(cards: tuple[MechanismCard, MechanismCard]) -> None:
    _, control = cards
    assert not [c for c in control.supported() if c.kind in ("role", "patching")]
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
    for name in ("roles", "patching", "dla", "lens"):
        assert (tmp_path / f"{name}.csv").exists()
    # Every claim's evidence names a table the card wrote.
    assert all(c.evidence.split()[0] in {f"{n}.csv" for n in card.tables} for c in card.claims)
