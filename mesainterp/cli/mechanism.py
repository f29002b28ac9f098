"""`mesainterp mechanism MODEL [--planted] [--out DIR]`: a model's mechanism card.

MODEL is a zoo name or a checkpoint directory that records its task; `--planted`
builds the card of the hand-built planted model for MODEL's task instead. The run is
`mesainterp.runs.mechanism_run` (mechanism.md, mechanism.json, the evidence tables and
run.json); this module only parses the options and prints the claims.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mesainterp.cli.output import CommandResult
from mesainterp.runs.evidence_run import plan_evidence
from mesainterp.runs.mechanism_run import run_mechanism_run
from mesainterp.schema import NON_NEGATIVE, Range, option

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mechanism", help="a mechanism card: checked claims about what the model's heads do"
    )
    p.add_argument("model", help="a zoo model name or a checkpoint directory")
    p.add_argument("--out", default=None, help="output directory (default: mechanism-MODEL)")
    p.add_argument("--n", type=option(Range(lo=8)), default=64, help="examples (default 64)")
    p.add_argument("--steps", type=option(Range(lo=1)), default=3, help="answer steps measured")
    p.add_argument("--seed", type=option(NON_NEGATIVE), default=0)
    p.add_argument(
        "--planted", action="store_true", help="the hand-built planted model for the task"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    plan = plan_evidence(args.model, role="planted" if args.planted else "trained")
    out = Path(args.out or f"mechanism-{Path(args.model).name}")
    done = run_mechanism_run(
        plan, out, n=args.n, seed=args.seed, steps=args.steps, command=args.command_line
    )
    card = done.card
    data = {
        "card": str(done.paths["markdown"]),
        "claims": [c.to_dict() for c in card.claims],
        "literature": [r.to_dict() for r in card.literature],
    }
    lines = [f"{card.model_name} on {card.task_name}: {len(card.supported())} of"
             f" {len(card.claims)} claims supported"]  # fmt: skip
    lines += [f"  [{c.status}] {c.text}" for c in card.claims if c.status == "supported"]
    lines += [f"  {r.finding}: {r.verdict}" for r in card.literature]
    lines.append(f"wrote {done.paths['markdown']}, {done.paths['json']}, {done.paths['run']}")
    return CommandResult(data=data, text="\n".join(lines))
