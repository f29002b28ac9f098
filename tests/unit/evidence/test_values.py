"""Config validation, result values, the scorecard's JSON and the ranking rule."""

from __future__ import annotations

import json
import math

import pytest

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.evidence import EvidenceConfig, EvidenceResult, Scorecard, rank
from mesainterp.evidence.result import judged, not_applicable
from mesainterp.evidence.scorecard import SCORECARD_SCHEMA_VERSION


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_examples", 5),
        ("folds", 1),
        ("goal_margin", 2.0),
        ("circuit_fraction", 0.0),
        ("curve_fractions", (0.1, 1.5)),
        ("seed", -1),
        ("n_boot", True),
    ],
)
def test_config_refuses_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field.split("[")[0]):
        EvidenceConfig(**{field: value})  # type: ignore[arg-type]


def test_config_round_trips_and_refuses_unknown_keys() -> None:
    cfg = EvidenceConfig(n_examples=100, curve_fractions=(0.05, 0.5))
    assert EvidenceConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="nonsense"):
        EvidenceConfig.from_dict({"nonsense": 1})


def test_judged_passes_on_the_interval_bound_not_the_point() -> None:
    common = {"test": "t", "criterion": "c", "metric": "m", "control_name": "ctrl", "details": {}}
    ok = judged(value=0.8, ci=(0.78, 0.82), control=0.5, threshold=0.2, **common)  # type: ignore[arg-type]
    assert ok.verdict == "pass" and ok.margin == pytest.approx(0.3) and ok.p_value < 0.05
    # The same point margin with a wide interval (lower bound 0.0 < 0.2) fails.
    wide = judged(value=0.8, ci=(0.5, 1.1), control=0.5, threshold=0.2, **common)  # type: ignore[arg-type]
    assert wide.verdict == "fail" and wide.margin_low == pytest.approx(0.0)
    # Picking the best of 6 layers costs a factor 6 on p.
    picked = judged(value=0.8, ci=(0.72, 0.88), control=0.5, threshold=0.2, cells=6, **common)  # type: ignore[arg-type]
    single = judged(value=0.8, ci=(0.72, 0.88), control=0.5, threshold=0.2, **common)  # type: ignore[arg-type]
    assert picked.p_value == pytest.approx(min(1.0, 6 * single.p_value))
    no = judged(value=0.6, ci=(0.58, 0.62), control=0.5, threshold=0.2, **common)  # type: ignore[arg-type]
    assert no.verdict == "fail" and "0.100" in no.reason and "> 0.05" in no.reason
    absolute = judged(
        value=0.6, ci=(0.58, 0.62), control=0.9, threshold=0.5, compare_to_control=False, **common
    )  # type: ignore[arg-type]
    assert absolute.passed and absolute.margin == pytest.approx(0.6)
    nan = judged(value=math.nan, ci=(0.5, 0.9), control=None, threshold=0.5, **common)  # type: ignore[arg-type]
    assert nan.verdict == "fail" and nan.value is None and "undefined" in nan.reason


def test_result_refuses_unknown_verdict() -> None:
    with pytest.raises(ConfigError, match="verdict"):
        EvidenceResult(
            test="t", criterion="c", metric="m", value=1.0, ci_low=0.0, ci_high=1.0,
            control=0.0, control_name="x", margin=1.0, threshold=0.5, verdict="maybe",  # type: ignore[arg-type]
            reason="",
        )  # fmt: skip


def _card(name: str, margins: list[float | None]) -> Scorecard:
    tests = []
    for i, m in enumerate(margins):
        if m is None:
            tests.append(not_applicable(f"t{i}", "c", 0.2, "does not apply"))
        else:
            tests.append(
                judged(
                    test=f"t{i}",
                    criterion="c",
                    metric="m",
                    value=m,
                    ci=(m - 0.01, m + 0.01),
                    control=0.0,
                    control_name="ctrl",
                    threshold=0.2,
                    details={"k": [1, 2]},
                )
            )
    return Scorecard(
        model_name=name, task={"name": "x"}, config=EvidenceConfig(), tests=tuple(tests),
        provenance={"seed": 0},
    )  # fmt: skip


def test_scorecard_json_round_trip_and_schema(tmp_path) -> None:
    card = _card("a", [0.5, None, 0.1])
    path = card.save(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "mesainterp.scorecard"
    assert doc["schema_version"] == SCORECARD_SCHEMA_VERSION
    assert doc["summary"] == {"passed": 1, "applicable": 2, "score": card.score}
    assert {t["threshold"] for t in doc["tests"]} == {0.2}
    again = Scorecard.load(tmp_path)
    assert again.to_dict() == doc
    doc["schema_version"] = SCORECARD_SCHEMA_VERSION + 1
    with pytest.raises(MesaInterpError, match="schema_version"):
        Scorecard.from_dict(doc)


def test_rank_puts_passes_before_margins() -> None:
    many_small = _card("passes-two", [0.21, 0.21, -0.5])
    one_big = _card("passes-one", [1.0, -0.5, -0.5])
    none = _card("passes-none", [0.1, 0.0, None])
    order = [name for name, _ in rank([none, one_big, many_small])]
    assert order == ["passes-two", "passes-one", "passes-none"]
    assert 1.9 < many_small.score < 2.1
