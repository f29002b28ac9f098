"""The value one evidence test returns: a number, its interval, its control, a verdict.

Every test of the battery reports the same fields so the scorecard can lay them
side by side and a reader can check each verdict by hand: `value` and its 95%
interval, the control it is compared with (named), the threshold the comparison
uses, and the verdict with the reason for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mesainterp.errors import ConfigError, allowed

__all__ = ["VERDICTS", "EvidenceResult", "Verdict", "judged", "not_applicable"]

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
    details:        per-layer curves, per-control numbers, sizes (JSON-able).
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

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError("verdict", f"got {self.verdict!r}", allowed(VERDICTS))
        for name in ("value", "ci_low", "ci_high", "control", "margin"):
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
        return cls(**{f: data[f] for f in fields}, details=dict(data.get("details") or {}))


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
) -> EvidenceResult:
    """A result whose verdict is `margin >= threshold` (margin = value - control, or value)."""
    if compare_to_control and control is not None:
        margin = value - control
        rule = f"value - {control_name}"
    else:
        margin = value
        rule = "value"
    ok = math.isfinite(margin) and margin >= threshold
    reason = f"{rule} = {margin:.3f} {'>=' if ok else '<'} threshold {threshold:g}"
    if not math.isfinite(margin):
        reason = f"{rule} is undefined (NaN)"
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
        verdict="pass" if ok else "fail",
        reason=reason,
        details=details,
    )


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
