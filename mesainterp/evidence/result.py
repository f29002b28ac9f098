"""The value one evidence test returns: a number, its interval, its control, a verdict.

Every test of the battery reports the same fields so the scorecard can lay them
side by side and a reader can check each verdict by hand: `value` and its 95%
interval, the best control it is compared with (named), the margin over it and
that margin's corrected lower bound, the p-value of "margin <= threshold"
(corrected within the test for the layers and positions searched, and
`p_adjusted` across the tests of a battery by Holm), and the verdict: pass only
if `p_adjusted <= ALPHA` (see `mesainterp.evidence.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from mesainterp.errors import ConfigError, allowed
from mesainterp.evidence.margin import Judgement
from mesainterp.evidence.stats import ALPHA, normal_p_from_interval

__all__ = [
    "VERDICTS",
    "EvidenceResult",
    "Verdict",
    "from_judgement",
    "judged",
    "not_applicable",
    "with_adjusted_p",
]

Verdict = Literal["pass", "fail", "not-applicable"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


def _num(x: float | None) -> float | None:
    """JSON-safe float: NaN and infinities become null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True, kw_only=True)
class EvidenceResult:
    """One test's outcome.

    test:           the test's name ("goal_representation", ...).
    criterion:      the pass rule in words, with the threshold filled in.
    metric:         what `value` measures (e.g. "held-out accuracy").
    value:          the number (None when not applicable).
    ci_low/ci_high: its 95% interval (how it was computed is in `details["ci"]`).
    control:        the control's number and `control_name` what it is.
    margin:         what the threshold is compared with: value - control, or value.
    threshold:      the pass threshold on `margin`.
    verdict:        "pass", "fail" or "not-applicable"; `reason` says why.
    details:        per-position tables, per-control numbers, sizes (JSON-able).
    margin_low:     the margin's lower bound (corrected for the cells searched).
    p_value:        one-sided p of "margin <= threshold", corrected within the test.
    p_adjusted:     the same after Holm across the battery's tests (the verdict's p).
    """

    test: str
    criterion: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    control: float | None
    control_name: str
    margin: float | None
    threshold: float
    verdict: Verdict
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    margin_low: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError("verdict", f"got {self.verdict!r}", allowed(VERDICTS))
        for name in (
            "value", "ci_low", "ci_high", "control", "margin", "margin_low", "p_value",
            "p_adjusted",
        ):  # fmt: skip
            object.__setattr__(self, name, _num(getattr(self, name)))

    @property
    def applicable(self) -> bool:
        return self.verdict != "not-applicable"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "criterion": self.criterion,
            "metric": self.metric,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "control": self.control,
            "control_name": self.control_name,
            "margin": self.margin,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "reason": self.reason,
            "margin_low": self.margin_low,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvidenceResult:
        fields = (
            "test", "criterion", "metric", "value", "ci_low", "ci_high", "control",
            "control_name", "margin", "threshold", "verdict", "reason",
        )  # fmt: skip
        missing = [f for f in fields if f not in data]
        if missing:
            raise ConfigError(f"tests[].{missing[0]}", "missing field")
        return cls(
            **{f: data[f] for f in fields},
            details=dict(data.get("details") or {}),
            margin_low=data.get("margin_low"),
            p_value=data.get("p_value"),
            p_adjusted=data.get("p_adjusted"),
        )


def _reason(rule: str, margin: float, low: float | None, p: float, threshold: float) -> str:
    ok = p <= ALPHA
    if not math.isfinite(margin):
        return f"{rule} is undefined (NaN)"
    bound = "" if low is None else f", lower bound {low:.3f}"
    return (
        f"{rule} = {margin:.3f}{bound} vs threshold {threshold:g}: p = {p:.3g}"
        f" {'<=' if ok else '>'} {ALPHA:g}"
    )


def judged(
    *,
    test: str,
    criterion: str,
    metric: str,
    value: float,
    ci: tuple[float, float],
    control: float | None,
    control_name: str,
    threshold: float,
    details: dict[str, Any],
    compare_to_control: bool = True,
    cells: int = 1,
) -> EvidenceResult:
    """A result judged on its 95% interval (tests without a paired bootstrap).

    margin = value - control (or value); p is the one-sided normal reading of the
    interval (`normal_p_from_interval`) times `cells`, the number of layers or
    settings the reported one was picked from (Bonferroni); the verdict `p <= ALPHA`.
    """
    if compare_to_control and control is not None:
        margin = value - control
        shift = control
        rule = f"value - {control_name}"
    else:
        margin, shift, rule = value, 0.0, "value"
    low = ci[0] - shift
    p = min(1.0, cells * normal_p_from_interval(margin, low, ci[1] - shift, threshold))
    if not math.isfinite(margin):
        p = 1.0
    return EvidenceResult(
        test=test,
        criterion=criterion,
        metric=metric,
        value=value,
        ci_low=ci[0],
        ci_high=ci[1],
        control=control,
        control_name=control_name,
        margin=margin,
        threshold=threshold,
        verdict="pass" if p <= ALPHA else "fail",
        reason=_reason(rule, margin, low, p, threshold),
        details=details | {"p": "normal reading of the 95% interval"},
        margin_low=low,
        p_value=p,
        p_adjusted=p,
    )


def from_judgement(
    *,
    test: str,
    criterion: str,
    metric: str,
    judgement: Judgement,
    threshold: float,
    details: dict[str, Any],
    skill: bool,
) -> EvidenceResult:
    """A probe test's result from its corrected margin (`margin.judge`)."""
    j = judgement
    rule = f"{'skill' if skill else 'margin'} over {j.control_name}"
    return EvidenceResult(
        test=test,
        criterion=criterion,
        metric=metric,
        value=j.value,
        ci_low=j.value_ci[0],
        ci_high=j.value_ci[1],
        control=j.control,
        control_name=j.control_name,
        margin=j.margin,
        threshold=threshold,
        verdict="pass" if j.p_value <= ALPHA else "fail",
        reason=_reason(rule, j.margin, j.margin_low, j.p_value, threshold),
        details=j.details() | details,
        margin_low=j.margin_low,
        p_value=j.p_value,
        p_adjusted=j.p_value,
    )


def with_adjusted_p(result: EvidenceResult, p_adjusted: float) -> EvidenceResult:
    """The result re-judged on its Holm-adjusted p (a battery-level correction)."""
    if not result.applicable or result.p_value is None:
        return result
    ok = p_adjusted <= ALPHA
    reason = result.reason + f"; Holm-adjusted p = {p_adjusted:.3g} {'<=' if ok else '>'} {ALPHA:g}"
    return replace(result, p_adjusted=p_adjusted, verdict="pass" if ok else "fail", reason=reason)


def not_applicable(test: str, criterion: str, threshold: float, reason: str) -> EvidenceResult:
    """The result of a test that does not apply to this task or model."""
    return EvidenceResult(
        test=test,
        criterion=criterion,
        metric="",
        value=None,
        ci_low=None,
        ci_high=None,
        control=None,
        control_name="",
        margin=None,
        threshold=threshold,
        verdict="not-applicable",
        reason=reason,
    )
