"""Calibration of the battery's pinned thresholds on null models: how often does a
model that does not search pass each test?

Null draws:
- random-init twins of a zoo model's architecture, one battery run per seed; each
  draw is scored against 5 further twins of disjoint seeds, exactly as the CLI
  scores a model against its controls;
- scorecards already written for models that solve their training set without a
  general algorithm (the `<task>-memorizer` zoo models: `mesainterp evidence
  tree-path-memorizer --out DIR`), passed with `--scorecards DIR ...`.

For each test it records the draws, the passes, the false-positive rate and its
one-sided 95% Clopper-Pearson upper bound, against the battery's alpha. With zero
passes in k draws the bound is 1 - 0.05^(1/k): showing a rate <= 0.05 at 95%
confidence takes k >= 59 null draws, so a smaller run reports "consistent with"
(no pass seen) or "exceeds" (observed rate above alpha), never "shown". The
thresholds are the pinned ones (`EvidenceConfig()` defaults); this script never
moves them: a rate above alpha is a finding to report.

    python benchmarks/calibrate_thresholds.py --task tree-path --seeds 101,102,103 \\
        [--scorecards DIR ...] [--include EARLIER.json ...] [--n 600] [--tests ...] --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from scipy.stats import beta

from mesainterp.evidence import EvidenceConfig
from mesainterp.evidence.scorecard import TESTS, Scorecard, run_battery, twin_controls
from mesainterp.evidence.stats import ALPHA
from mesainterp.model.build import random_init_twin
from mesainterp.model.config import ModelConfig

CONTROL_SEED_OFFSET = 1000  # a draw at seed s is scored against twins s+1000, s+1001, ...


def upper_bound(passes: int, draws: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a pass rate."""
    return 1.0 if passes >= draws else float(beta.ppf(level, passes + 1, draws - passes))


def summarise(draws: list[dict[str, Any]]) -> dict[str, Any]:
    """Per test: draws, passes, rate, upper bound and the reading against ALPHA."""
    out: dict[str, Any] = {}
    for test in TESTS:
        rows = [d for d in draws if d["tests"].get(test, {}).get("verdict") in ("pass", "fail")]
        passes = sum(d["tests"][test]["verdict"] == "pass" for d in rows)
        if not rows:
            continue
        rate, bound = passes / len(rows), upper_bound(passes, len(rows))
        # What a verdict on the point estimate (not the corrected lower bound) would give.
        point = [
            d["model"]
            for d in rows
            if d["tests"][test]["margin"] is not None
            and d["tests"][test]["margin"] >= d["tests"][test]["threshold"]
        ]
        reading = (
            "shown <= alpha"
            if bound <= ALPHA
            else "exceeds alpha"
            if rate > ALPHA
            else "consistent with alpha (too few draws to show it)"
        )
        out[test] = {
            "draws": len(rows),
            "passes": passes,
            "passed_by": [d["model"] for d in rows if d["tests"][test]["verdict"] == "pass"],
            "false_positive_rate": rate,
            "point_estimate_above_threshold": point,
            "upper_95": bound,
            "alpha": ALPHA,
            "reading": reading,
        }
    return out


def _row(card: Scorecard, kind: str) -> dict[str, Any]:
    return {
        "model": card.model_name,
        "kind": kind,
        "task": card.task.get("name"),
        "tests": {
            t.test: {
                "verdict": t.verdict,
                "margin": t.margin,
                "margin_low": t.margin_low,
                "threshold": t.threshold,
                "p_adjusted": t.p_adjusted,
            }
            for t in card.tests
        },
    }


def _random_init_draws(
    zoo_name: str, seeds: list[int], cfg: EvidenceConfig, tests: list[str] | None
) -> list[dict[str, Any]]:
    from importlib import resources

    from mesainterp.model.checkpoint import read_checkpoint_document
    from mesainterp.tasks.registry import task_from_config

    where = resources.files("mesainterp.zoo").joinpath("checkpoints", zoo_name)
    document = read_checkpoint_document(str(where))
    task = task_from_config(document["task"])
    config = ModelConfig.from_dict(document["model"])
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        model = random_init_twin(config, seed=seed)
        twins = twin_controls(config, first_seed=seed + CONTROL_SEED_OFFSET)
        card = run_battery(
            model, task, control=twins, config=cfg, tests=tests, progress=False,
            model_name=f"{zoo_name} random-init seed {seed}",
        )  # fmt: skip
        row = _row(card, "random-init")
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps({"model": row["model"], "seconds": row["seconds"]}), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", default=[], help="zoo model whose twins to score")
    ap.add_argument("--seeds", default="101,102,103", help="random-init seeds, comma-separated")
    ap.add_argument("--scorecards", nargs="*", default=[], help="scorecard dirs of null models")
    ap.add_argument("--n", type=int, default=600, help="examples per probe")
    ap.add_argument("--tests", default="all", help="comma-separated subset of the tests")
    ap.add_argument("--include", nargs="*", default=[], help="earlier calibration JSONs to pool")
    ap.add_argument("--out", required=True, help="calibration JSON to write")
    args = ap.parse_args()
    cfg = EvidenceConfig(n_examples=args.n)
    tests = None if args.tests == "all" else args.tests.split(",")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    draws = [_row(Scorecard.load(Path(d) / "scorecard.json"), "memorizer") for d in args.scorecards]
    for path in args.include:
        draws += json.loads(Path(path).read_text())["draws"]
    for name in args.task:
        draws += _random_init_draws(name, seeds, cfg, tests)
    report = {
        "thresholds": {k: v for k, v in cfg.to_dict().items() if "margin" in k or "threshold" in k},
        "n_examples": args.n,
        "draws": draws,
        "per_test": summarise(draws),
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report["per_test"], indent=2))


if __name__ == "__main__":
    main()
