"""`mesainterp eval MODEL`: held-out metrics of a zoo model or a checkpoint directory."""

from __future__ import annotations

import argparse

from mesainterp.cli.output import CommandResult
from mesainterp.schema import NON_NEGATIVE, POSITIVE, option
from mesainterp.training.evaluation import evaluate, held_out_seed
from mesainterp.zoo.loader import load_model

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="held-out accuracy of a model on fresh samples")
    parser.add_argument(
        "model", help="a zoo model name, a checkpoint directory, or a run directory"
    )
    parser.add_argument(
        "--n", type=option(POSITIVE), default=1000, help="number of fresh samples (default 1000)"
    )
    parser.add_argument(
        "--seed",
        type=option(NON_NEGATIVE),
        default=0,
        help="held-out seed index (disjoint from training seeds)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    loaded = load_model(args.model)
    task = loaded.require_task("evaluate on")
    source = loaded.source.ref if loaded.source.kind != "zoo" else f"zoo:{loaded.name}"
    result = evaluate(loaded.model, task, args.n, seed=held_out_seed(args.seed))
    data = {"model": source, "fingerprint": loaded.fingerprint, **result.to_dict()}
    lines = [f"{source} on {task.name} ({result.n} held-out samples):"]
    m = result.metrics
    for key, value in m.items():
        if key.endswith(("_ci_low", "_ci_high")):
            continue
        line = f"  {key}: {value:.4f}"
        if f"{key}_ci_low" in m:
            line += f"  (95% CI {m[key + '_ci_low']:.4f}-{m[key + '_ci_high']:.4f})"
        lines.append(line)
    return CommandResult(data=data, text="\n".join(lines))
