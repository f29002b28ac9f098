"""`mesainterp evidence MODEL --out DIR`: the internal-search evidence battery on one model.

MODEL is a zoo name or a checkpoint directory that records its task. `--random-init`
scores the model's random-init twin instead (its own control twins then take the
next seeds); `--planted` scores the hand-built model with a planted search algorithm
for MODEL's task (`mesainterp.evidence.planted_registry`).

The run is `mesainterp.runs.evidence_run` (it writes scorecard.json, scorecard.csv,
positions_TEST.csv and run.json); this module only parses the options and prints
the scorecard. Every argument, the model and the task are checked before any model
runs; on bad input nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mesainterp.cli.output import CommandResult
from mesainterp.errors import MesaInterpError
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.scorecard import TESTS, Scorecard
from mesainterp.runs.evidence_run import plan_evidence, run_evidence_run
from mesainterp.schema import NON_NEGATIVE, Range, option
from mesainterp.zoo.controls import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evidence", help="the internal-search evidence battery: a scorecard for one model"
    )
    p.add_argument("model", help="a zoo model name or a checkpoint directory")
    p.add_argument("--out", required=True, help="output directory (created; must be empty)")
    p.add_argument("--n", type=option(Range(lo=20)), default=600, help="examples per probe")
    p.add_argument("--pairs", type=option(Range(lo=2)), default=32, help="counterfactual pairs")
    p.add_argument("--seed", type=option(NON_NEGATIVE), default=0)
    p.add_argument("--tests", default="all", help=f"comma-separated subset of: {', '.join(TESTS)}")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--random-init", action="store_true", help="score the model's random-init twin instead"
    )
    which.add_argument(
        "--planted", action="store_true", help="score the hand-built planted model for the task"
    )
    p.set_defaults(run=run)


def _tests(spec: str) -> list[str] | None:
    if spec == "all":
        return None
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in TESTS]
    if bad or not names:
        raise MesaInterpError(
            f"--tests: unknown test {bad[0] if bad else spec!r} (allowed: all, {', '.join(TESTS)})"
        )
    return names


def run(args: argparse.Namespace) -> CommandResult:
    # Everything that can fail on bad input, before any model is built or run.
    out = Path(args.out)
    tests = _tests(args.tests)
    role: Role = "planted" if args.planted else "random-init" if args.random_init else "trained"
    plan = plan_evidence(args.model, role=role)
    cfg = EvidenceConfig(n_examples=args.n, n_pairs=args.pairs, seed=args.seed)
    done = run_evidence_run(plan, out, config=cfg, tests=tests, command=args.command_line)
    card = done.scorecard
    data = {
        "scorecard": str(done.paths["scorecard"]),
        "summary": card.to_dict()["summary"],
        "tests": card.table(),
    }
    return CommandResult(data=data, text=_text(card, out))


def _fmt(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:6.3f}"


def _text(card: Scorecard, out: Path) -> str:
    lines = [
        f"{card.model_name} on {card.task.get('name')}: passed {card.n_pass} of"
        f" {len(card.applicable)} applicable tests (score {card.score:.3f})",
        f"{'test':24s} {'value':>6s} {'95% CI':>17s} {'control':>7s} {'margin':>6s}"
        f" {'low':>6s} {'thresh':>6s}  verdict",
    ]
    for t in card.tests:
        ci = "" if t.ci_low is None else f"[{_fmt(t.ci_low)}, {_fmt(t.ci_high)}]"
        lines.append(
            f"{t.test:24s} {_fmt(t.value)} {ci:>17s} {_fmt(t.control)} {_fmt(t.margin)}"
            f" {_fmt(t.margin_low)} {t.threshold:6.2f}  {t.verdict}: {t.reason}"
        )
        row = {r["test"]: r for r in card.table()}[t.test]
        extra = [f"best baseline {row['best_baseline']}"] if row["best_baseline"] else []
        extra += [f"random-init {row['random_init']}"] if row["random_init"] else []
        if extra:
            lines.append(f"{'':24s} " + "; ".join(extra))
    lines.append(f"correction: {card.to_dict()['correction']}")
    lines.append(f"wrote {out / 'scorecard.json'}, {out / 'scorecard.csv'}, {out / 'run.json'}")
    return "\n".join(lines)
