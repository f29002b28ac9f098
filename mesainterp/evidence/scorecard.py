"""The scorecard: the whole battery on one model, as one citable JSON document.

`run_battery` runs every test that applies to the model's task (the others are
reported as not applicable, with the reason) and returns a `Scorecard`; its JSON
carries a schema version, the battery version, the settings and thresholds,
every test's number, interval, best control (random-init twins of several
seeds, shuffled labels, search-free baselines), corrected p and verdict, the
per-position tables, and the provenance block. The verdicts are Holm-corrected
across the tests that ran (`stats.CORRECTION`).

Ranking models on the same task (`rank`): a model's score is the number of
tests it passes plus a tie-breaker in (-0.1, 0.1): a tenth of the mean, over
applicable tests, of (margin - threshold) clipped to [-1, 1]. Passing a test
always outweighs margins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.algorithmic import algorithmic_match
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.goal import goal_representation, goal_retargeting
from mesainterp.evidence.iterative import iterative_computation
from mesainterp.evidence.localised import localised_mechanism
from mesainterp.evidence.lookahead import look_ahead
from mesainterp.evidence.profile import EvidenceInputs, collect_inputs
from mesainterp.evidence.result import EvidenceResult, with_adjusted_p
from mesainterp.evidence.stats import CORRECTION, holm
from mesainterp.progress import progress_bar
from mesainterp.tasks.base import Task

__all__ = [
    "BATTERY_VERSION",
    "SCORECARD_FORMAT",
    "SCORECARD_SCHEMA_VERSION",
    "TESTS",
    "Scorecard",
    "rank",
    "run_battery",
    "twin_controls",
]

SCORECARD_FORMAT = "mesainterp.scorecard"
SCORECARD_SCHEMA_VERSION = 2
# The battery's own version: 2 = declared positions, search-free baselines,
# random-init distributions, corrected verdicts (version 1 read ":" only).
BATTERY_VERSION = 2
SCORECARD_FILE = "scorecard.json"

TestFn = Callable[[EvidenceInputs, EvidenceConfig], EvidenceResult]
TESTS: dict[str, TestFn] = {
    "goal_representation": goal_representation,
    "goal_retargeting": goal_retargeting,
    "look_ahead": look_ahead,
    "iterative_computation": iterative_computation,
    "localised_mechanism": localised_mechanism,
    "algorithmic_match": algorithmic_match,
}


@dataclass(frozen=True, kw_only=True)
class Scorecard:
    """Every test's result for one model on one task, with settings and provenance."""

    model_name: str
    task: dict[str, Any]
    config: EvidenceConfig
    tests: tuple[EvidenceResult, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def applicable(self) -> list[EvidenceResult]:
        return [t for t in self.tests if t.applicable]

    @property
    def n_pass(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def score(self) -> float:
        """Tests passed plus the margin tie-breaker (see the module docstring)."""
        gaps = [
            max(-1.0, min(1.0, t.margin - t.threshold))
            for t in self.applicable
            if t.margin is not None
        ]
        tie = 0.1 * (sum(gaps) / len(gaps)) if gaps else 0.0
        return self.n_pass + max(-0.099, min(0.099, tie))

    def result(self, test: str) -> EvidenceResult:
        for t in self.tests:
            if t.test == test:
                return t
        raise MesaInterpError(f"test: no result {test!r} (allowed: {', '.join(TESTS)})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCORECARD_FORMAT,
            "schema_version": SCORECARD_SCHEMA_VERSION,
            "battery_version": BATTERY_VERSION,
            "correction": CORRECTION,
            "model_name": self.model_name,
            "task": self.task,
            "config": self.config.to_dict(),
            "summary": {
                "passed": self.n_pass,
                "applicable": len(self.applicable),
                "score": self.score,
            },
            "tests": [t.to_dict() for t in self.tests],
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scorecard:
        if not isinstance(data, dict) or data.get("format") != SCORECARD_FORMAT:
            raise MesaInterpError(f"format: not a scorecard (expected {SCORECARD_FORMAT!r})")
        version = data.get("schema_version")
        if not isinstance(version, int) or not 1 <= version <= SCORECARD_SCHEMA_VERSION:
            raise MesaInterpError(
                f"schema_version: {version!r} is not one this mesainterp reads"
                f" (1..{SCORECARD_SCHEMA_VERSION})"
            )
        return cls(
            model_name=str(data.get("model_name", "")),
            task=dict(data.get("task") or {}),
            config=EvidenceConfig.from_dict(dict(data.get("config") or {})),
            tests=tuple(EvidenceResult.from_dict(t) for t in data.get("tests", [])),
            provenance=dict(data.get("provenance") or {}),
        )

    def save(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        path = out / SCORECARD_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Scorecard:
        p = Path(path)
        if p.is_dir():
            p = p / SCORECARD_FILE
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise MesaInterpError(f"{p}: cannot read a scorecard ({err})") from None

    def table(self) -> list[dict[str, Any]]:
        """One row per test: the columns the report and the CLI print."""
        return [
            {
                "test": t.test,
                "value": t.value,
                "ci_low": t.ci_low,
                "ci_high": t.ci_high,
                "control": t.control,
                "control_name": t.control_name,
                "margin": t.margin,
                "threshold": t.threshold,
                "margin_low": t.margin_low,
                "p_adjusted": t.p_adjusted,
                "best_baseline": _best_baseline(t),
                "random_init": _random_init(t),
                "verdict": t.verdict,
                "reason": t.reason,
            }
            for t in self.tests
        ]


def _best_baseline(t: EvidenceResult) -> str | None:
    best = t.details.get("best_baseline")
    return None if not best else f"{best['name']}: {best['value']:.3f}"


def _random_init(t: EvidenceResult) -> str | None:
    dist = t.details.get("random_init_distribution")
    if not dist:
        return None
    return f"{min(dist):.3f}..{max(dist):.3f} ({len(dist)} seeds)"


def _holm_battery(results: list[EvidenceResult]) -> list[EvidenceResult]:
    """Every applicable result re-judged on its Holm-adjusted p across the battery."""
    idx = [i for i, r in enumerate(results) if r.applicable and r.p_value is not None]
    adjusted = holm([float(results[i].p_value) for i in idx])  # type: ignore[arg-type]
    out = list(results)
    for i, p in zip(idx, adjusted, strict=True):
        out[i] = with_adjusted_p(results[i], p)
    return out


def twin_controls(config: Any, *, n: int = 5, first_seed: int | None = None) -> list[Any]:
    """`n` random-init twins of a `ModelConfig`, seeds first_seed.. (default config.seed + 1)."""
    from mesainterp.model.build import random_init_twin

    start = config.seed + 1 if first_seed is None else first_seed
    return [random_init_twin(config, seed=start + i) for i in range(n)]


def run_battery(
    model: Any,
    task: Task,
    *,
    control: Any | Sequence[Any],
    config: EvidenceConfig | None = None,
    model_name: str = "model",
    provenance: dict[str, Any] | None = None,
    tests: Sequence[str] | None = None,
    progress: bool | None = None,
) -> Scorecard:
    """Run the battery (or the named `tests`) on `model` for `task`.

    control:    the model's random-init twins (same architecture, random weights),
                at least `config.n_twins` of them, one per seed, e.g.
                `[random_init_twin(config, seed=s) for s in range(1, 6)]`.
    provenance: the block to store; default `mesainterp.provenance` of
                this model (fingerprinted), task, settings and seed.
    """
    cfg = config or EvidenceConfig()
    names = list(TESTS) if tests is None else list(tests)
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        raise MesaInterpError(f"tests: unknown test {unknown[0]!r} (allowed: {', '.join(TESTS)})")
    twins = list(control) if isinstance(control, list | tuple) else [control]
    if len(twins) < cfg.n_twins:
        raise MesaInterpError(
            f"control: {len(twins)} random-init twin(s) given; the random-init control is a"
            f" distribution over >= {cfg.n_twins} seeds (config.n_twins)"
        )
    torch.manual_seed(cfg.seed)
    inputs = collect_inputs(
        model, twins, task, n_examples=cfg.n_examples, seed=cfg.seed, progress=progress
    )
    results = _holm_battery(
        [
            TESTS[name](inputs, cfg)
            for name in progress_bar(names, desc="evidence", progress=progress)
        ]
    )
    if provenance is None:
        from mesainterp.provenance_stamp import provenance as stamp

        provenance = stamp(
            model=model,
            model_name=model_name,
            config={"task": task.config_dict(), "evidence": cfg.to_dict()},
            seed=cfg.seed,
        )
    return Scorecard(
        model_name=model_name,
        task=task.config_dict(),
        config=cfg,
        tests=tuple(results),
        provenance=dict(provenance),
    )


def rank(cards: Sequence[Scorecard]) -> list[tuple[str, float]]:
    """Model names by decreasing score (see the module docstring); ties keep input order."""
    scored = [(c.model_name, c.score) for c in cards]
    for name, s in scored:
        if not math.isfinite(s):
            raise MesaInterpError(f"scorecard {name!r}: score is not finite")
    return sorted(scored, key=lambda kv: -kv[1])
