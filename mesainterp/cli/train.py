"""`mesainterp train TASK --out DIR`: train a model organism (the zoo recipe by default)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mesainterp.cli.output import CommandResult
from mesainterp.errors import ConfigError
from mesainterp.schema import POSITIVE, Range, option
from mesainterp.training.config import TrainConfig, load_train_config
from mesainterp.training.loop import train
from mesainterp.training.presets import PRESETS, preset

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a task (online sampling, held-out evaluation, resumable)",
        description="Without --config, runs the recipe that produced the shipped zoo model of TASK.",
    )
    parser.add_argument("task", help="task name (e.g. tree-path)")
    parser.add_argument(
        "--out", required=True, help="run directory (checkpoint/, eval_log.jsonl, ...)"
    )
    parser.add_argument("--config", help="a TrainConfig as .toml or .json")
    parser.add_argument(
        "--steps",
        type=option(Range(lo=1, hi=2**32, hi_open=True)),
        help="override the number of training steps",
    )
    parser.add_argument(
        "--seed", type=option(Range(lo=0, hi=2**28, hi_open=True)), help="override the run seed"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument(
        "--threads",
        type=option(POSITIVE),
        default=1,
        help="torch CPU threads (default 1; results are bit-reproducible for a fixed count)",
    )
    parser.set_defaults(run=run)


def _config(args: argparse.Namespace) -> TrainConfig:
    saved = Path(args.out) / "train_config.json"
    if args.config:
        config = load_train_config(args.config)
    elif args.resume and saved.is_file():
        config = load_train_config(saved)
    else:
        config = preset(args.task)
    # A recipe name such as `tree-path-memorizer` stands for its task.
    expected = PRESETS.get(args.task, {}).get("task", args.task)
    if config.task != expected:
        raise ConfigError("task", f"the config trains {config.task!r}, not {expected!r}")
    changes = {}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.seed is not None:
        changes["seed"] = args.seed
    return config.replace(**changes) if changes else config


def run(args: argparse.Namespace) -> CommandResult:
    if args.threads < 1:
        raise ConfigError("--threads", f"expected a positive int, got {args.threads}")
    config = _config(args)
    torch.set_num_threads(args.threads)
    result = train(config, args.out, resume=args.resume, command=args.command_line)
    data = result.to_dict()
    metrics = result.eval.metrics if result.eval else {}
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "_ci_" not in k)
    text = (
        f"trained {config.task} for {result.step} steps in {result.wall_time_s:.0f} s\n"
        f"checkpoint: {data['checkpoint']}\nheld-out: {shown or 'not evaluated'}"
    )
    return CommandResult(data=data, text=text)
