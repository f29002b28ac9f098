"""`mesainterp eval MODEL`: held-out metrics of a zoo model or a checkpoint directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from mesainterp.cli.output import CommandResult
from mesainterp.errors import MesaInterpError
from mesainterp.model.checkpoint import Checkpoint, load_checkpoint
from mesainterp.schema import NON_NEGATIVE, POSITIVE, option
from mesainterp.training.evaluate import evaluate, held_out_seed
from mesainterp.training.state import CHECKPOINT_DIR

__all__ = ["add_parser", "load_model_arg", "run"]


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


def load_model_arg(model: str) -> tuple[Checkpoint, str]:
    """A checkpoint from a path (checkpoint or run directory) or a zoo name."""
    path = Path(model)
    if path.is_dir():
        if (path / CHECKPOINT_DIR).is_dir():
            path = path / CHECKPOINT_DIR
        return load_checkpoint(path), str(path)
    from mesainterp import zoo

    return zoo.load(model), f"zoo:{model}"


def run(args: argparse.Namespace) -> CommandResult:
    if args.seed < 0:
        raise MesaInterpError(f"--seed: expected a non-negative int, got {args.seed}")
    checkpoint, source = load_model_arg(args.model)
    if checkpoint.task is None:
        raise MesaInterpError(f"{source}: the checkpoint records no task to evaluate on")
    from mesainterp.tasks import task_from_config

    task = task_from_config(checkpoint.task)
    result = evaluate(checkpoint.model, task, args.n, seed=held_out_seed(args.seed))
    data = {"model": source, "fingerprint": checkpoint.fingerprint, **result.to_dict()}
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
