"""`mesainterp info MODEL`: a model's config, task and fingerprint (zoo name or directory)."""

from __future__ import annotations

import argparse

from mesainterp.cli.output import CommandResult
from mesainterp.model.build import model_shape
from mesainterp.zoo.loader import load_model

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="describe a model: config, task, fingerprint")
    parser.add_argument("model", help="a zoo model name, or a checkpoint or run directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    loaded = load_model(args.model)
    shape = model_shape(loaded.model)
    checkpoint = loaded.checkpoint
    data = {
        "path": loaded.source.ref,
        "kind": loaded.source.kind,
        "model": None if loaded.config is None else loaded.config.to_dict(),
        "task": None if checkpoint is None else checkpoint.task,
        "fingerprint": loaded.fingerprint,
        "metadata": None if checkpoint is None else checkpoint.metadata,
    }
    text = (
        f"{loaded.source.ref}: {shape.n_layers} layers, {shape.n_heads} heads,"
        f" d_model {shape.d_model}\ntask: {data['task']}\nfingerprint: {loaded.fingerprint}"
    )
    return CommandResult(data=data, text=text)
