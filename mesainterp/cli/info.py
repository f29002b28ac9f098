"""`mesainterp info MODEL`: a checkpoint's config, task and fingerprint."""

from __future__ import annotations

import argparse

from mesainterp.cli.output import CommandResult
from mesainterp.model.checkpoint import load_checkpoint

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="describe a model checkpoint")
    parser.add_argument("model", help="a checkpoint directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    checkpoint = load_checkpoint(args.model)
    data = {
        "path": str(checkpoint.path),
        "model": checkpoint.config.to_dict(),
        "task": checkpoint.task,
        "fingerprint": checkpoint.fingerprint,
        "metadata": checkpoint.metadata,
    }
    cfg = checkpoint.config
    text = (
        f"{checkpoint.path}: {cfg.n_layers} layers, {cfg.n_heads} heads, d_model {cfg.d_model}\n"
        f"task: {checkpoint.task}\nfingerprint: {checkpoint.fingerprint}"
    )
    return CommandResult(data=data, text=text)
