"""The literature verdicts follow from the claims alone, by the rules declared in code."""

from __future__ import annotations

from mesainterp.mechanism import Claim, compare_with_literature


def _role(head: str, layer: int, role: str, relation: str, ok: bool = True) -> Claim:
    return Claim(text="t", kind="role", evidence="roles.csv row 0", value=0.9, ci_low=0.8,
                 ci_high=1.0, status="supported" if ok else "failed", head=head,
                 query_role=role, relation=relation, layer=layer)  # fmt: skip


def _verdicts(claims: list[Claim], measured: set[str]) -> dict[str, str]:
    rows = compare_with_literature("tree-path", claims, measured)
    return {r.finding.split(" (")[0]: r.verdict for r in rows}


def test_deduction_levels_must_rise_with_the_layer() -> None:
    rising = [_role("L1H0", 1, ":", "edge into goal ancestor 0"),
              _role("L2H0", 2, ":", "edge into goal ancestor 1")]  # fmt: skip
    flat = [_role("L2H0", 2, ":", "edge into goal ancestor 0"),
            _role("L2H1", 2, ":", "edge into goal ancestor 1")]  # fmt: skip
    one = rising[:1]
    key = "deduction heads climb one tree level per layer"
    assert _verdicts(rising, {"roles"})[key] == "consistent"
    assert _verdicts(flat, {"roles"})[key] == "not found"
    assert _verdicts(one, {"roles"})[key] == "not found"
    assert _verdicts(rising, set())[key] == "not tested"


def test_a_failed_ablation_check_is_not_a_finding() -> None:
    moved = _role("L4H1", 4, "answer 1", "goal")
    unmoved = _role("L4H1", 4, "answer 1", "goal", ok=False)
    assert _verdicts([moved], {"roles"})["goal movement"] == "consistent"
    assert _verdicts([unmoved], {"roles"})["goal movement"] == "not found"
    assert _verdicts([], {"roles"})["goal movement"] == "not found"


def test_coinciding_relations_count_and_other_tasks_have_no_table() -> None:
    both = _role("L0H0", 0, "edge child tokens", "previous token = edge into current")
    assert _verdicts([both], {"roles"})["edge-token concatenation"] == "consistent"
    assert compare_with_literature("sorting", [both], {"roles"}) == []


def test_algorithmic_rows_read_the_closest_reference() -> None:
    def algo(closest: str, ok: bool) -> Claim:
        return Claim(text="t", kind="probe", evidence="algorithm.csv", value=0.95, ci_low=0.9,
                     ci_high=1.0, status="supported" if ok else "failed",
                     relation=f"closest {closest}")  # fmt: skip

    def rows(c: list[Claim]) -> list[str]:
        return [r.verdict for r in compare_with_literature("icl-regression", c, {"algorithm"})]

    assert rows([algo("gd-1", True)]) == ["consistent", "not found"]
    assert rows([algo("gd-3", True)]) == ["not found", "consistent"]
    assert rows([algo("gd-1", False)]) == ["not found", "not found"]
    assert rows([algo("least squares", True)]) == ["not found", "not found"]
    assert rows([]) == ["not tested", "not tested"]
